import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

from envs import DiffEnv  # noqa: E402

_ENVS: dict = {}


@pytest.fixture(scope="session")
def make_env():
    """Envs are cached per (task, num_envs): building one compiles nothing new but costs a model build."""

    def make(task: str, num_envs: int) -> DiffEnv:
        key = (task, num_envs)
        if key not in _ENVS:
            _ENVS[key] = DiffEnv(task, num_envs, device="cpu", seed=0)
        env = _ENVS[key]
        env.reset(seed=0)
        return env

    return make
