"""Settings for the core suite: one torch thread (a training job shares this machine's two cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# Module top, so it holds before any test module builds a model; the fixture below re-asserts it
# for tests that run after something else changed it.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    torch.set_num_threads(1)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Silence the engine-choice notice in this suite: which engine ran is not what these tests are about.

    ``occlude(engine="auto")`` warns "incremental engine not used (...)" for every model the
    incremental engine cannot walk (all the oracles here). Tests that care about warnings record
    them themselves; test_engine.py compares the engines directly.
    """
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:incremental engine not used:UserWarning"))
