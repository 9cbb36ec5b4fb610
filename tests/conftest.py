"""Shared test settings: hypothesis profiles and the CIFAR-10 location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", settings.get_profile("ci"), deadline=None, max_examples=40)
settings.register_profile("dev", deadline=None, max_examples=25)
# for a deep look after changing an engine: HYPOTHESIS_PROFILE=thorough pytest tests/engine
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    """The folder named by OCCSENS_DATA_DIR (holding cifar-10-batches-py); skips the test without it."""
    value = os.environ.get("OCCSENS_DATA_DIR")
    if not value:
        pytest.skip("OCCSENS_DATA_DIR is not set: CIFAR-10 lives there (CI points it at ../shared/cifar10)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"OCCSENS_DATA_DIR={value!r} is not a folder (CI points it at ../shared/cifar10)")
    return path
