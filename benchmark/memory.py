"""The memory one training iteration adds: its peak above what the process held just before it.

A process's lifetime peak (what ``peak_memory_mb`` reports) carries the ~0.8 GB that torch, Warp and the
env hold before any iteration, so it shrinks every ratio between two learners. Here, per iteration:

- CPU (Linux): glibc hands freed memory back first (``malloc_trim(0)``: the runner asks it to keep freed
  memory, so the previous iteration's working set would otherwise still be resident and the delta read
  ~0), the high-water mark is reset (``5`` into ``/proc/self/clear_refs``), and the iteration's peak is
  ``VmHWM`` minus the ``VmRSS`` before it. Memory allocated but never written is not resident, so it
  does not count (as the OS sees it).
- CUDA: torch's allocator peak above its allocation before (``reset_peak_memory_stats``), plus Warp's own
  device allocations from its memory pool, which torch does not see (the pool's used-memory high-water
  mark, reset through the CUDA driver). The sum is an upper bound: the two peaks may not coincide.

Elsewhere (no procfs) the figure is NaN rather than a guess.

Resetting a high-water mark also resets what the process's peak reads (``ru_maxrss`` is the same mark), so
the run's peak is kept here too: :meth:`IterationMemory.peak_mb` is the highest mark seen before any reset
and since. On CUDA it is torch's allocator peak plus Warp's pool high-water (the model, states and step
slots of the APG family live there, not in torch's allocator).
"""

from __future__ import annotations

import ctypes
import gc
import math
import resource
from pathlib import Path

import torch

from envs.physics import warp_device  # Warp's name for the device: a bare ``cuda`` is torch's current GPU

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
CU_MEMPOOL_ATTR_USED_MEM_HIGH = 8  # cuda.h: CUmemPool_attribute


def _status_kb(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing kept to hand back
        pass


def peak_memory_mb(device: torch.device) -> float:
    """The high-water mark since the process started or since the last reset: on CUDA torch's allocator
    plus Warp's memory pool, on the CPU the process's resident set."""
    if device.type == "cuda":
        pool = _warp_pool_high(device) if _warp_pool_enabled(device) else 0
        return (torch.cuda.max_memory_allocated(device) + pool) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class IterationMemory:
    """One run's memory: ``start()`` just before an iteration and ``added_mb()`` right after it give what
    the iteration adds; ``peak_mb()`` the run's peak. Made at the run's start, it starts that peak afresh
    where the device allows (a DAgger student's run is not charged its teacher's, trained in the same
    process; on the CPU what the teacher left resident still counts, as the OS sees it)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_ok = STATUS.exists() and CLEAR_REFS.exists()
        self._base = 0.0
        self._peak_before = 0.0  # MB: the highest mark that start() reset
        self._reset_marks()

    def peak_mb(self) -> float:
        return max(self._peak_before, peak_memory_mb(self.device))

    def _reset_marks(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._warp_base = _warp_pool_reset(self.device)
        elif self.cpu_ok:
            try:
                CLEAR_REFS.write_text("5")
            except OSError:  # a kernel that refuses the reset: no honest per-iteration figure
                self.cpu_ok = False

    def start(self) -> None:
        self._peak_before = self.peak_mb()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.cpu_ok:
            _malloc_trim()
        self._reset_marks()
        if self.device.type == "cuda":
            self._base = torch.cuda.memory_allocated(self.device)
        elif self.cpu_ok:  # (a kernel that refused the reset left no honest figure: added_mb is NaN)
            self._base = _status_kb("VmRSS") * 1024

    def added_mb(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch_added = torch.cuda.max_memory_allocated(self.device) - self._base
            warp_added = _warp_pool_high(self.device) - self._warp_base if self._warp_base is not None else 0
            return (torch_added + max(warp_added, 0)) / 2**20
        if not self.cpu_ok:
            return math.nan
        return (_status_kb("VmHWM") * 1024 - self._base) / 2**20


def _warp_pool_reset(device: torch.device) -> int | None:
    """Reset Warp's pool high-water mark to its current use; returns that use (None without a pool)."""
    import warp as wp

    name = warp_device(device)
    if not wp.is_mempool_enabled(name):
        return None
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        handle, pool, zero = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64(0)
        ok = cuda.cuDeviceGet(ctypes.byref(handle), int(name.split(":")[1])) == 0
        ok = ok and cuda.cuDeviceGetDefaultMemPool(ctypes.byref(pool), handle) == 0
        ok = ok and cuda.cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH, ctypes.byref(zero)) == 0
    except OSError:
        ok = False
    return wp.get_mempool_used_mem_current(name) if ok else None


def _warp_pool_enabled(device: torch.device) -> bool:
    import warp as wp

    return wp.is_mempool_enabled(warp_device(device))


def _warp_pool_high(device: torch.device) -> int:
    import warp as wp

    return wp.get_mempool_used_mem_high(warp_device(device))


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for reuse rather than hand it back to the OS. By default, blocks of
    a few MB and more (image batches, activations) are mapped and unmapped on every update and the next
    update page-faults them in again: that system time was half of a DreamerV3 update on this CPU
    (`make update-costs`). Blocks up to 32 MB (glibc's largest threshold) now come from the heap, which
    is not trimmed below 1 GB; larger ones are still mapped. Taking every block from the heap (no
    mapping at all) fragmented it instead: a DreamerV3 run's memory grew by ~1 GB per 10 minutes.
    Returns whether it applied (False off glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mmap_threshold, trim_threshold, top_pad = -3, -1, -2  # mallopt parameters (malloc.h)
    settings = ((mmap_threshold, 32 << 20), (trim_threshold, 1 << 30), (top_pad, 64 << 20))
    return all(libc.mallopt(key, value) == 1 for key, value in settings)
