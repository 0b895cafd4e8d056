"""Learner registry: every module here defining a ``Learner`` subclass with a ``name`` registers it.

Adding a learner is one file here plus ``configs/<algo>/defaults.yaml`` naming it (``learner: <name>``).
"""

from __future__ import annotations

import sys
from functools import cache

from algorithms.base import Learner, LearnerConfig
from envs.plugins import choose, discover


@cache
def registry() -> dict[str, type[Learner]]:
    return discover(sys.modules[__name__], Learner)


def get_learner(name: str) -> type[Learner]:
    return choose("learner", name, registry())


__all__ = ["Learner", "LearnerConfig", "get_learner", "registry"]
