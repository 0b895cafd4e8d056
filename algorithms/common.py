"""Pieces every learner shares: observation normalisation, phase timing, episode statistics, schedules."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class RunningMeanStd(torch.nn.Module):
    """Running mean and variance (parallel-merge update); a module so checkpoints carry it."""

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.tensor(epsilon))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        batch = batch.reshape(-1, *self.mean.shape)
        batch_mean, batch_var, n = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable in ``x`` (the statistics are constants). Not clipped, as in SHAC and D.Va: a
        clamp would pass no gradient through a coordinate far from its running mean."""
        return (x - self.mean) / torch.sqrt(self.var + 1e-5)


class PhaseTimer:
    """Wall-clock seconds per named phase (forward simulation, backward, update, ...). On a CUDA device the
    clock waits for the device's queued work at both ends (else a phase would be billed for the kernels
    it only launched); it never touches a device the run does not use (a CPU run on a GPU host creates
    no CUDA context)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.seconds: dict[str, float] = defaultdict(float)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.seconds[phase] += time.perf_counter() - start

    @contextmanager
    def apart_from_rendering(self, phase: str, env) -> Iterator[None]:
        """Times ``phase`` and books the env's rendering within it (a pixel env's ``render_seconds``)
        as phase ``render``, so forward simulation and rendering are reported apart."""
        before = getattr(env, "render_seconds", 0.0)
        with self(phase):
            yield
        rendering = getattr(env, "render_seconds", 0.0) - before
        if rendering:
            self.seconds[phase] -= rendering
            self.seconds["render"] += rendering

    def pop(self) -> dict[str, float]:
        """Times since the last pop, as ``time_<phase>`` metrics."""
        out = {f"time_{k}": v for k, v in self.seconds.items()}
        self.seconds.clear()
        return out


class EpisodeStats:
    """Sums the returns and lengths of episodes that finished (from the env's ``info``) on the env's device,
    in float64: recording every step reads nothing on the host; :meth:`pop` reads once per iteration."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None  # (episodes, return sum, length sum)

    def record(self, info: dict) -> None:
        returns, lengths = info["episode_return"].double(), info["episode_length"].double()
        finished = ~torch.isnan(returns)
        step = torch.stack([finished.sum().double(), returns.nan_to_num().sum(), lengths.nan_to_num().sum()])
        self.sums = step if self.sums is None else self.sums + step

    def pop(self) -> dict[str, float]:
        """Mean return and length of episodes finished since the last pop (NaN when none did)."""
        episodes, returns, lengths = (0.0, 0.0, 0.0) if self.sums is None else self.sums.tolist()
        self.sums = None
        if not episodes:
            return {"train_return": math.nan, "train_episode_length": math.nan}
        return {"train_return": returns / episodes, "train_episode_length": lengths / episodes}


def linear_decay(start: float, end: float, progress: float) -> float:
    """Linear interpolation from ``start`` to ``end`` as ``progress`` goes 0 -> 1."""
    return start + (end - start) * min(max(progress, 0.0), 1.0)
