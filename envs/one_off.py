"""What a run pays once, before its iterations cost what they will: Warp kernel modules built (the first
time on a machine: compiled into Warp's kernel cache) or loaded from that cache, and the env's step
graphs captured. The runner measures them from building the env to the end of the first iteration and
reports them in its first line and the run's summary.

Warp announces each module load through its logger (``warp.set_logger``) at ``LOG_INFO``, with the time
it took and whether it was compiled or cached; graph captures are timed by the env layer
(:func:`graph_capture`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import warp as wp

_MODULE_LOAD = re.compile(r"Module .* load on device .* took ([0-9.]+) ms\s*\((compiled|cached)\)")
log = logging.getLogger(__name__)


@dataclass
class OneOffCosts:
    """Seconds and counts of what was paid once between :meth:`start` and :meth:`stop`."""

    kernels_built_s: float = 0.0
    kernel_modules_built: int = 0
    kernels_loaded_s: float = 0.0
    kernel_modules_loaded: int = 0
    graph_capture_s: float = 0.0
    graphs_captured: int = 0

    def start(self) -> OneOffCosts:
        """Count from now (a measurement started inside, a teacher's run, counts its own in between)."""
        global _measuring
        self._previous = (wp.get_logger(), wp.config.log_level, _measuring)
        wp.set_logger(_ModuleLoads(self, self._previous[0]))
        wp.config.log_level = wp.LOG_INFO
        _measuring = self
        return self

    def stop(self) -> None:
        """Stop counting (again: nothing)."""
        global _measuring
        if getattr(self, "_previous", None) is None:
            return
        logger, level, _measuring = self._previous
        wp.set_logger(logger)
        wp.config.log_level = level
        self._previous = None

    def __enter__(self) -> OneOffCosts:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    def summary(self) -> dict[str, float | int]:
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in vars(self).items()
                if not key.startswith("_")}  # fmt: skip

    def line(self) -> str:
        """``12 Warp kernel modules built in 95.1 s, 30 loaded from the cache in 1.2 s, 4 graphs captured
        in 0.8 s``."""
        return (f"{self.kernel_modules_built} Warp kernel modules built in {self.kernels_built_s:.1f} s, "
                f"{self.kernel_modules_loaded} loaded from the cache in {self.kernels_loaded_s:.1f} s, "
                f"{self.graphs_captured} graphs captured in {self.graph_capture_s:.1f} s")  # fmt: skip


_measuring: OneOffCosts | None = None


@contextmanager
def graph_capture() -> Iterator[None]:
    """Time a graph capture (the env layer's) for the measurement running, less the kernel modules built or
    loaded inside it: Warp loads a module at its first launch, which may fall inside a capture."""
    costs = _measuring
    if costs is None:
        yield
        return
    kernels_before, start = costs.kernels_built_s + costs.kernels_loaded_s, time.perf_counter()
    yield  # a failed capture raises here and is not counted
    kernels = costs.kernels_built_s + costs.kernels_loaded_s - kernels_before
    costs.graph_capture_s += time.perf_counter() - start - kernels
    costs.graphs_captured += 1


class _ModuleLoads:
    """A Warp logger that counts module loads and passes everything else to the logger it replaced,
    Warp's informational chatter only at debug level (it would break progress bars)."""

    def __init__(self, costs: OneOffCosts, previous) -> None:
        self.costs, self.previous = costs, previous

    def info(self, message: str) -> None:
        if match := _MODULE_LOAD.search(message):
            seconds = float(match.group(1)) / 1000
            if match.group(2) == "compiled":
                self.costs.kernels_built_s += seconds
                self.costs.kernel_modules_built += 1
            else:
                self.costs.kernels_loaded_s += seconds
                self.costs.kernel_modules_loaded += 1
        else:
            log.debug("warp: %s", message)

    def debug(self, message: str) -> None:
        log.debug("warp: %s", message)

    def warning(self, message: str, category=None, stacklevel: int = 1) -> None:
        self.previous.warning(message, category, stacklevel)

    def error(self, message: str) -> None:
        self.previous.error(message)
