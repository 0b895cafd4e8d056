"""Task registry: every module in this package that defines a ``Task`` subclass with a ``name`` is a task.

Adding a task is adding one file here; nothing else changes.
"""

from __future__ import annotations

import sys
from functools import cache

from envs.plugins import choose, discover
from envs.tasks.base import Task


@cache
def registry() -> dict[str, type[Task]]:
    return discover(sys.modules[__name__], Task)


def get_task(name: str) -> Task:
    return choose("task", name, registry())()
