"""The learner seam: the runner builds ``Learner(env, config)`` and calls ``train_iteration()`` until a
budget runs out. Learners own no training loop, logger or file I/O. A learner that distils another
(``needs_teacher``) also receives the teacher, a trained learner the runner built from its run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from envs import DiffEnv


@dataclass
class LearnerConfig:
    """Fields every learner has. Subclasses add their hyperparameters (documented per field)."""

    iterations: int = 1000  # training iterations (SHAC's epochs); a budget may stop earlier

    def __post_init__(self) -> None:
        """Refuse impossible values with one line that names the key (the runner checks before it builds
        anything); subclasses extend this with their own fields."""
        require(self.iterations >= 1, f"iterations={self.iterations}: must be at least 1")


Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``policy(obs, is_first) -> actions`` for a fixed batch of envs; ``is_first`` marks the envs whose
episode begins with ``obs``."""


def require(condition: bool, message: str) -> None:
    """A learner config check: ``ValueError(message)`` unless ``condition``."""
    if not condition:
        raise ValueError(message)


class Learner:
    """Base class: subclasses set ``name`` and ``Config`` and implement the methods below."""

    name: ClassVar[str]
    Config: ClassVar[type[LearnerConfig]] = LearnerConfig
    needs_teacher: ClassVar[bool] = False  # True: built as ``Learner(env, config, teacher=<trained Learner>)``

    def __init__(self, env: DiffEnv, config: LearnerConfig) -> None:
        self.env, self.config = env, config

    def train_iteration(self) -> dict[str, float]:
        """One iteration; metrics must include ``env_steps`` (consumed this iteration) and
        ``time_<phase>`` seconds for the phases it ran. Report the same keys every iteration (NaN for a
        value not measured this time): ``metrics.csv`` takes its columns from the first row."""
        raise NotImplementedError

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions in [-1, 1] for a batch of observations (as returned by the env)."""
        raise NotImplementedError

    def new_policy(self, num_envs: int, deterministic: bool = True) -> Policy:
        """A policy for ``num_envs`` envs that starts afresh: whatever it remembers between steps (a
        recurrent learner's state) begins at its initial value and resets where ``is_first``. Every
        rollout (training data, evaluation) takes its own; the default is :meth:`act`, which remembers
        nothing."""
        return lambda obs, is_first: self.act(obs, deterministic)

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
