"""Settings for the core suite: one torch thread (a training job shares this machine's two cores)."""

from __future__ import annotations

import pytest
import torch

# Module top, so it holds before any test module builds a model; the fixture below re-asserts it
# for tests that run after something else changed it.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    torch.set_num_threads(1)
    yield
