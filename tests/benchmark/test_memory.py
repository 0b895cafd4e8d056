"""The memory a run reports: an iteration counts what it allocates itself (with torch or Warp), not what
the process held before, and the run's peak survives the per-iteration resets."""

import pytest
import torch


def test_the_memory_an_iteration_adds_is_its_own_not_the_process_peak():
    """An iteration that allocates and frees a known 200 MB reports 200 MB, whatever the process held
    before (here a 300 MB block kept alive throughout)."""
    from benchmark.memory import IterationMemory

    held = torch.ones(300 * 2**20 // 4)  # noqa: F841 (resident before and during the iteration)
    memory = IterationMemory(torch.device("cpu"))
    for _ in range(2):
        memory.start()
        block = torch.ones(200 * 2**20 // 4)
        del block
        assert memory.added_mb() == pytest.approx(200, abs=10)
    memory.start()
    assert memory.added_mb() < 10  # an iteration that allocates nothing adds nothing


def test_the_runs_peak_survives_the_per_iteration_resets_and_counts_warps_pool_on_cuda(monkeypatch):
    """Resetting the high-water mark for an iteration also resets what the process's peak reads: the run's
    peak must still hold a 400 MB block freed before the reset. On CUDA it adds Warp's pool to torch's."""
    from benchmark import memory as memory_module

    memory = memory_module.IterationMemory(torch.device("cpu"))
    start = memory.peak_mb()
    block = torch.ones(400 * 2**20 // 4)
    del block
    memory.start()  # resets the mark
    memory.added_mb()
    assert memory_module.peak_memory_mb(torch.device("cpu")) < start + 100  # the process's mark forgot it
    assert memory.peak_mb() >= start + 390  # the run's did not
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 300 * 2**20)
    monkeypatch.setattr(memory_module, "_warp_pool_enabled", lambda device: True)
    monkeypatch.setattr(memory_module, "_warp_pool_high", lambda device: 500 * 2**20)
    assert memory_module.peak_memory_mb(torch.device("cuda:0")) == 800


def test_the_memory_probe_counts_a_warp_array_allocated_in_the_iteration():
    import warp as wp

    from benchmark.memory import IterationMemory

    wp.zeros(1, device="cpu")  # Warp's runtime loads before the iteration, as in a run
    memory = IterationMemory(torch.device("cpu"))
    memory.start()
    block = wp.zeros(200 * 2**20 // 4, dtype=wp.float32, device="cpu")  # written: resident
    added = memory.added_mb()
    del block
    assert added == pytest.approx(200, abs=15)
