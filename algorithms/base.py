"""The learner seam: the runner builds ``Learner(env, config)`` and calls ``train_iteration()`` until a
budget runs out. Learners own no training loop, logger or file I/O. A learner that distils another
(``needs_teacher``) also receives the teacher, a trained learner the runner built from its run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from envs import Env


@dataclass(frozen=True)
class Bound:
    """The values a config field allows, declared with the field (:func:`bounded`) and checked in one
    place (:func:`check_bounds`). Limits are inclusive (``low``, ``high``) or strict (``above``,
    ``below``); ``choices`` lists the allowed names; a list field's items obey the limits, and it holds
    ``count`` of them (None: one or more)."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] | None = None
    count: int | None = None

    def describe(self) -> str:
        """What the value may be, in words: ``in [0, 1)``, ``positive``, ``at least 1``, ``a or b``."""
        if self.choices is not None:
            return " or ".join(self.choices)
        lower = (
            None
            if self.low is None and self.above is None
            else (f"[{_num(self.low)}" if self.low is not None else f"({_num(self.above)}")
        )
        upper = (
            None
            if self.high is None and self.below is None
            else (f"{_num(self.high)}]" if self.high is not None else f"{_num(self.below)})")
        )
        if lower and upper:
            return f"in {lower}, {upper}"
        if upper:
            return f"at most {_num(self.high)}" if self.high is not None else f"below {_num(self.below)}"
        if self.above == 0:
            return "positive"
        return f"at least {_num(self.low)}" if self.low is not None else f"above {_num(self.above)}"

    def allows(self, value: float) -> bool:
        return not (
            (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        )

    def problem(self, key: str, value: Any) -> str | None:
        """One line naming ``key``, its value and what it may be; None when the value is allowed."""
        if self.choices is not None:
            return None if value in self.choices else f"{key}={value!r}: use {' or '.join(self.choices)}"
        if isinstance(value, list | tuple):
            many = "one or more" if self.count is None else str(self.count)
            wrong_length = len(value) == 0 if self.count is None else len(value) != self.count
            if wrong_length or not all(map(self.allows, value)):
                return f"{key}={list(value)}: give {many} values {self.describe()}"
            return None
        return None if self.allows(value) else f"{key}={value}: must be {self.describe()}"


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


# Upper bounds of the sizes a user can set: far past any run of the paper (its widest layer is 1024, its
# longest window 64 steps, its largest batch 512), and small enough that a typo fails in one line before
# anything allocates instead of after minutes of swapping
MAX_WIDTH = 16_384  # units of a layer, features, channels
MAX_STEPS = 4_096  # steps of a window, an imagined horizon or a replayed sequence
MAX_BATCH = 65_536  # samples per update


def bounded(default: Any, **bound: Any) -> Any:
    """A dataclass field with its allowed values: ``horizon: int = bounded(32, low=1)``; a list default
    is copied per instance."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"bound": Bound(**bound)})
    return field(default=default, metadata={"bound": Bound(**bound)})


def check_bounds(values: Any, schema: type) -> None:
    """``ValueError`` with one line for the first field of ``schema`` (a dataclass) whose value in
    ``values`` (an instance or a mapping) its :class:`Bound` refuses."""
    get = values.get if isinstance(values, Mapping) else lambda key: getattr(values, key)
    for f in fields(schema):
        bound = bound_of(schema, f.name)
        value = get(f.name)
        if bound is not None and value is not None and (problem := bound.problem(f.name, value)) is not None:
            raise ValueError(problem)


def bound_of(schema: type, name: str) -> Bound | None:
    """The field's bound from the most derived class that declares one: a subclass that only changes a
    field's default keeps its parent's bound."""
    for klass in schema.__mro__:
        declared = getattr(klass, "__dataclass_fields__", {}).get(name)
        if declared is not None and "bound" in declared.metadata:
            return declared.metadata["bound"]
    return None


@dataclass
class LearnerConfig:
    """Fields every learner has. Subclasses add their hyperparameters (documented per field, bounds
    declared with :func:`bounded`)."""

    iterations: int = bounded(1000, low=1)  # training iterations (SHAC's epochs); a budget may stop earlier

    def __post_init__(self) -> None:
        """Refuse impossible values with one line that names the key (the runner checks before it builds
        anything): the fields' bounds, then what a subclass checks across fields."""
        check_bounds(self, type(self))


Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``policy(obs, is_first) -> actions`` for a fixed batch of envs; ``is_first`` marks the envs whose
episode begins with ``obs``."""


def require(condition: bool, message: str) -> None:
    """A learner config check across fields: ``ValueError(message)`` unless ``condition``."""
    if not condition:
        raise ValueError(message)


class Learner:
    """Base class: subclasses set ``name`` and ``Config`` and implement the methods below.

    Two things the runner relies on that a new learner may not expect: a learner restored from a
    checkpoint (evaluation, videos, a DAgger teacher) is rebuilt on **one non-differentiable env** and
    then loads its state, so ``__init__`` must not assume the training batch size or a gradient tape;
    and the figures draw a learner's curve from ``train_return`` in its metrics (the mean return of the
    episodes that ended in the iteration, NaN when none did): without it the runner says so once and
    the curve stays empty (:class:`algorithms.common.EpisodeStats` computes it from the env's ``info``).
    """

    name: ClassVar[str]
    Config: ClassVar[type[LearnerConfig]] = LearnerConfig
    # the version of the learner's maths and defaults: bump it with every change that can move results. A run
    # records it; runs of two versions are never pooled, and a campaign re-runs cells of an older one
    version: ClassVar[int] = 1
    needs_teacher: ClassVar[bool] = False  # True: built as ``Learner(env, config, teacher=<trained Learner>)``

    def __init__(self, env: Env, config: LearnerConfig) -> None:
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
