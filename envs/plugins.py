"""Plugin discovery shared by the task and learner registries: one file, one entry."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover(package: ModuleType, base: type) -> dict[str, type]:
    """Subclasses of ``base`` with a ``name``, defined in the modules of ``package``, keyed by name."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__:
                if getattr(obj, "name", None):
                    found[obj.name] = obj
    return dict(sorted(found.items()))


def choose(kind: str, name: str, options: dict[str, type]) -> type:
    """Look ``name`` up, or fail with one line that lists the valid choices."""
    if name not in options:
        raise KeyError(f"unknown {kind} '{name}'; choose one of: {', '.join(options)}")
    return options[name]
