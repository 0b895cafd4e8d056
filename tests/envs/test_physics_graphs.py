"""Captured control steps (``envs/physics.py``) against kernel-by-kernel stepping: the same numbers to the
bit, forward and gradients, for every task; step slots reused window after window but never while a
graph still needs them; a failed capture falls back with one warning."""

import logging

import pytest
import torch
import warp as wp

from envs import DiffEnv, registry


def trajectory(env: DiffEnv, windows: int = 2, steps: int = 3) -> list[torch.Tensor]:
    """Observations, rewards and action gradients of SHAC-like windows, then a few no-grad steps."""
    generator = torch.Generator().manual_seed(0)
    env.reset(seed=0)
    record = []
    for _ in range(windows):
        actions = (0.5 * torch.randn(steps, env.num_envs, env.act_dim, generator=generator)).requires_grad_()
        loss = 0.0
        for a in actions:
            obs, reward, *_ = env.step(a)
            loss = loss + reward.sum() + 1e-2 * obs.square().sum() + 1e-2 * env.body_transforms().sum()
        loss.backward()
        record += [obs.detach(), actions.grad]
        env.cut_graph()
    with torch.no_grad():
        for _ in range(3):
            obs, reward, *_ = env.step(0.3 * torch.ones(env.num_envs, env.act_dim))
    return [*record, obs, reward]


@pytest.mark.parametrize("task", list(registry()))
def test_captured_steps_equal_kernel_by_kernel_to_the_bit(task):
    eager = trajectory(DiffEnv(task, 2, device="cpu", seed=0, capture_graphs=False))
    captured = trajectory(DiffEnv(task, 2, device="cpu", seed=0, capture_graphs=True))
    assert all(e.abs().sum() > 0 for e in eager[1::2][:2])  # gradients that say something
    for e, c in zip(eager, captured, strict=True):
        assert torch.equal(e, c), (e - c).abs().max()


def test_slots_are_reused_by_the_next_window_and_never_while_a_graph_needs_them():
    env = DiffEnv("hopper", 2, device="cpu", seed=0)
    pool = env.sim._free_slots

    def window(actions):
        return sum(env.step(a)[1].sum() for a in actions)

    actions = torch.zeros(4, 2, env.act_dim, requires_grad=True)
    window(actions).backward()
    env.cut_graph()
    assert len(pool) == 4  # the graph is gone: its four slots are free
    slots = set(map(id, pool))
    loss_a = window(actions)  # takes the four slots
    env.cut_graph()
    assert not pool
    loss_b = window(actions)  # loss_a still needs its slots: four new ones
    assert not pool
    (grad_a,) = torch.autograd.grad(loss_a, actions)
    (grad_b,) = torch.autograd.grad(loss_b, actions)
    del loss_a, loss_b
    env.cut_graph()  # the env's state held the last window's graph
    assert len(pool) == 8 and slots < set(map(id, pool))

    reference = DiffEnv("hopper", 2, device="cpu", seed=0, capture_graphs=False)
    ref = []
    for _ in range(3):  # the same three windows, one after the other
        ref.append(torch.autograd.grad(sum(reference.step(a)[1].sum() for a in actions), actions)[0])
        reference.cut_graph()
    _, ref_a, ref_b = ref
    assert torch.equal(grad_a, ref_a) and torch.equal(grad_b, ref_b)


def test_a_failed_capture_falls_back_to_kernel_by_kernel_with_one_warning(monkeypatch, caplog):
    def refuses(*args, **kwargs):
        raise RuntimeError("no graphs on this device")

    monkeypatch.setattr(wp, "capture_begin", refuses)
    env = DiffEnv("cartpole", 2, device="cpu", seed=0)
    with caplog.at_level(logging.WARNING, logger="envs.physics"):
        got = trajectory(env)
    monkeypatch.undo()
    assert not env.sim.capture_graphs
    assert [r.getMessage() for r in caplog.records] == [
        "envs: graph capture failed (RuntimeError: no graphs on this device); "
        "stepping kernel by kernel (capture_graphs=false)"
    ]
    expected = trajectory(DiffEnv("cartpole", 2, device="cpu", seed=0, capture_graphs=False))
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))


@pytest.mark.parametrize("task", ["cartpole", "ant"])
def test_nothing_allocates_inside_a_capture(task, monkeypatch, caplog):
    """A CUDA graph cannot hold an allocation without memory pools: a capture that allocates fails there.
    Here every Warp CPU allocation made while a capture is open raises, and the no-grad and taped steps
    must still run as graphs (no fallback warning) and give the same numbers as kernel by kernel."""
    from warp._src import context

    capturing = []
    allocate = context.CpuDefaultAllocator.allocate

    def refuse_while_capturing(self, size_in_bytes):
        if capturing:
            raise RuntimeError(f"allocated {size_in_bytes} bytes inside a capture")
        return allocate(self, size_in_bytes)

    begin, end = wp.capture_begin, wp.capture_end
    monkeypatch.setattr(context.CpuDefaultAllocator, "allocate", refuse_while_capturing)
    monkeypatch.setattr(wp, "capture_begin", lambda *a, **k: (capturing.append(1), begin(*a, **k))[1])
    monkeypatch.setattr(wp, "capture_end", lambda *a, **k: (capturing.clear(), end(*a, **k))[1])
    eager = trajectory(DiffEnv(task, 2, device="cpu", seed=0, capture_graphs=False))
    with caplog.at_level(logging.WARNING, logger="envs.physics"):
        env = DiffEnv(task, 2, device="cpu", seed=0, capture_graphs=True)
        captured = trajectory(env)
    assert env.sim.capture_graphs and "graph capture failed" not in caplog.text
    for e, c in zip(eager, captured, strict=True):
        assert torch.equal(e, c)


def test_one_off_costs_count_the_kernel_modules_built_and_the_graphs_captured_once(tmp_path, monkeypatch):
    """An env's no-grad step is captured once however often it runs; a kernel in an empty cache is built
    (counted as built, not loaded); Warp's logger and log level are given back afterwards."""
    from envs.one_off import OneOffCosts

    logger, level = wp.get_logger(), wp.config.log_level
    env = DiffEnv("cartpole", 2, device="cpu", seed=0, differentiable=False)
    with OneOffCosts() as stepping, torch.no_grad():
        for _ in range(3):
            env.step(torch.zeros(2, env.act_dim))
    assert stepping.graphs_captured == 1 and stepping.graph_capture_s > 0

    @wp.kernel(module="unique")
    def add_one(x: wp.array(dtype=float)):
        x[wp.tid()] += 1.0

    monkeypatch.setattr(wp.config, "kernel_cache_dir", str(tmp_path))  # nothing cached: it must build
    with OneOffCosts() as building:
        x = wp.zeros(4, dtype=float, device="cpu")
        wp.launch(add_one, dim=4, inputs=[x], device="cpu")
    assert x.numpy().tolist() == [1.0] * 4
    assert (building.kernel_modules_built, building.kernel_modules_loaded, building.graphs_captured) == (1, 0, 0)
    assert building.kernels_built_s > 0
    assert wp.get_logger() is logger and wp.config.log_level == level
