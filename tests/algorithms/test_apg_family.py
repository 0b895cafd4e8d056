"""The APG family in one trainer: the two switches do what they say, and every variant runs."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from algorithms import get_learner
from algorithms.common import RunningMeanStd
from benchmark.build import make_env
from benchmark.config import algorithms, learner_config, load_config
from benchmark.diagnostics.apg_vs_dpg import window_gradients
from benchmark.run import run
from benchmark.speed.apg_costs import main as apg_costs_main
from benchmark.speed.apg_costs import scene_growth_report, with_extra_shapes
from envs import DiffEnv, registry
from envs.render.pytorch3d_mesh import vertices_per_mesh
from envs.render.scene import Scene

TINY = ["num_envs=4", "horizon=4", "image_size=24", "eval_envs=2", "eval_max_steps=50", "iterations=2", "device=cpu"]


def learner_for(algo: str, task: str = "cartpole", seed: int = 0, overrides: tuple[str, ...] = ()):
    cfg = load_config(algo, task, [*TINY, *overrides])
    torch.manual_seed(seed)
    env = make_env(cfg, cfg.num_envs, torch.device("cpu"), seed)
    return get_learner(cfg.learner)(env, learner_config(cfg)), env


def record_images(env):
    """Keep every rendered batch (to inspect its graph after backward)."""
    images = []
    render = env.renderer.render

    def recording(body_q):
        out = render(body_q)
        if out.requires_grad:
            out.retain_grad()
        images.append(out)
        return out

    env.renderer.render = recording
    return images


def actor_gradient(learner) -> torch.Tensor:
    loss, _ = learner.window_loss()
    learner.actor_opt.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in learner.actor_params if p.grad is not None])


def test_dva_trains_the_actor_and_its_encoder_through_the_dynamics():
    learner, _ = learner_for("dva")
    grad = actor_gradient(learner)
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    assert learner.encoder.convs[0].weight.grad.abs().sum() > 0


def hopper_actor_gradient(renderer: str, detach_input: bool) -> torch.Tensor:
    learner, _ = learner_for("shac_diffrender", "hopper", overrides=(f"renderer={renderer}",))
    torch.manual_seed(11)  # the same policy noise for every call

    def policy(t, obs):
        return learner.actor(learner.features(obs.detach() if detach_input else obs))

    loss, _ = learner.window_loss(policy)
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, learner.actor_params)])


@pytest.mark.parametrize(("renderer", "differentiable"), [("newton", False), ("diff", True)])
def test_only_a_differentiable_renderer_carries_gradients_from_the_images_into_the_state(renderer, differentiable):
    """The same window twice, the actor's input attached and detached (same seeds, so the same forward
    values): with a detached renderer the two actor gradients are identical, nothing flowed through the
    images; with ours, the attached input adds the terms through the rendered states."""
    attached, detached = (hopper_actor_gradient(renderer, detach_input) for detach_input in (False, True))
    assert detached.abs().sum() > 0
    if differentiable:
        assert not torch.allclose(attached, detached, rtol=1e-3, atol=0)
    else:
        assert torch.equal(attached, detached)


def test_shac_diffrender_sends_gradients_through_the_renderer():
    learner, env = learner_for("shac_diffrender")
    images = record_images(env)
    assert torch.isfinite(actor_gradient(learner)).all()
    # images rendered after the first step are functions of the simulated state (and the actions)
    assert any(img.grad is not None and img.grad.abs().sum() > 0 for img in images[1:])


def test_dpg_state_and_shac_differ_but_agree_in_direction():
    grads = []
    for algo in ("shac", "dpg_state"):
        learner, _ = learner_for(algo, "cartpole", seed=3)
        torch.manual_seed(11)  # same policy noise for both
        grads.append(actor_gradient(learner))
    full, decoupled = grads
    cosine = torch.nn.functional.cosine_similarity(full, decoupled, dim=0)
    assert not torch.allclose(full, decoupled) and cosine > 0, cosine


APG_FAMILY = [algo for algo in algorithms() if load_config(algo, "hopper").learner == "shac"]


@pytest.mark.parametrize(
    "algo, task", [(algo, "hopper") for algo in APG_FAMILY] + [("dva", t) for t in registry() if t != "hopper"]
)
def test_every_apg_learner_runs_on_one_task_and_dva_on_every_task(algo, task, tmp_path):
    """Every APG algo on the hopper, and D.Va (state critic, rendered actor, the physics' gradients) on
    every registered task: together they cover what the full product would, in a quarter of the runs."""
    cfg = load_config(algo, task, [*TINY, f"results_dir={tmp_path}", "run_name=tiny"])
    out = run(cfg, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["iterations"] == 2
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 2 and metrics["time_backward"].gt(0).all()
    assert metrics["time_render"].gt(0).all() == (algo in ("dva", "shac_diffrender"))


@pytest.mark.parametrize("task", ["cartpole", "hopper"])
def test_apg_is_dpg_plus_control_regularisation(task):
    """Three separate rollouts: attached (APG), detached (DPG), and the terms through the observations
    (open-loop adjoints times d pi/d obs . d obs/d theta); the first must be the sum of the other two."""
    cfg = load_config("shac", task, ["num_envs=4", "horizon=8", "device=cpu"])
    torch.manual_seed(0)
    env = make_env(cfg, cfg.num_envs, torch.device("cpu"), 0)
    learner = get_learner("shac")(env, learner_config(cfg))
    with torch.no_grad():  # leave the reset state, so contacts and velocities are non-trivial
        for _ in range(20):
            learner.obs, *_ = env.step(learner.act(learner.obs, deterministic=False))
    learner.state = env.state_observation()

    grads = window_gradients(learner, noise_seed=0)
    total = grads.dpg + grads.control_regularisation
    assert (grads.full - total).norm() < 1e-4 * grads.full.norm()
    assert grads.control_regularisation.norm() > 0.05 * grads.full.norm()  # the check is not vacuous
    assert torch.equal(window_gradients(learner, noise_seed=0).full, grads.full)  # the learner was restored


def test_grown_scenes_add_shapes_but_keep_the_dynamics():
    """Fig. 10's growing scenes: more for the renderers to draw, the same physics."""
    base, grown = DiffEnv("cartpole", 2, device="cpu"), DiffEnv(with_extra_shapes("cartpole", 12), 2, device="cpu")
    assert len(Scene.from_task(grown.task).kind) == len(Scene.from_task(base.task).kind) + 12
    actions = torch.linspace(-1, 1, 2)[:, None]
    for _ in range(5):
        base.step(actions)
        grown.step(actions)
    assert torch.equal(base.joint_q, grown.joint_q)


def test_scene_growth_report_keeps_the_cases_that_survived_and_marks_the_one_that_died(tmp_path):
    oom = "shac_diffrender: killed by SIGKILL (out of memory, see dmesg)"
    cases = [
        ("dva", 0, 800.0, ""),
        ("shac_diffrender", 0, 1600.0, ""),
        ("dva", 8, 810.0, ""),
        ("shac_diffrender", 8, 5000.0, ""),
        ("dva", 128, 830.0, ""),
        ("shac_diffrender", 128, np.nan, oom),
    ]
    rows = [dict(algo=algo, task="cartpole", extra_shapes=shapes, backward_s=0.5, iteration_memory_mb=mb - 700,
                 peak_memory_mb=mb, failed=why) for algo, shapes, mb, why in cases]  # fmt: skip
    markdown = scene_growth_report(pd.DataFrame(rows), tmp_path)
    header = [c.strip() for c in markdown.splitlines()[0].split("|")[2:-1]]
    cells = {row.split("|")[1].strip(): dict(zip(header, [c.strip() for c in row.split("|")[2:-1]], strict=True))
             for row in markdown.splitlines()[2:]}  # fmt: skip
    assert [cells["8"][f"iteration memory {a} (MB)"] for a in ("dva", "shac_diffrender")] == ["110.0", "4300.0"]
    assert cells["8"]["memory ratio shac_diffrender / dva"] == "39.091" and cells["8"]["failed"] == ""
    assert [cells["128"][f"process peak {a} (MB)"] for a in ("dva", "shac_diffrender")] == ["830.0", "nan"]
    assert "out of memory" in cells["128"]["failed"]
    assert (tmp_path / "scene_growth.png").stat().st_size > 1000
    assert pd.read_csv(tmp_path / "scene_growth.csv")["failed"].fillna("").str.contains("SIGKILL").sum() == 1


def test_the_mesh_growth_report_is_indexed_by_vertices_per_mesh_and_a_detail_without_a_scene_is_refused(
    tmp_path, capsys
):
    rows = [dict(algo=algo, task="cartpole", extra_shapes=0, vertices_per_mesh=vertices_per_mesh(k), backward_s=0.5,
                 iteration_memory_mb=mb, peak_memory_mb=mb + 700, failed="")
            for k in (1, 2) for algo, mb in (("dva", 100.0), ("shac_diffrender@pytorch3d", 300.0 * k))]  # fmt: skip
    markdown = scene_growth_report(pd.DataFrame(rows), tmp_path, by="vertices_per_mesh")
    assert [line.split("|")[1].strip() for line in markdown.splitlines()[2:]] == ["74", "290"]  # 2 + 72 k^2
    assert "| 6.0 |" in markdown.splitlines()[3]  # 600 MB against D.Va's 100 at detail 2
    assert (tmp_path / "mesh_detail.png").stat().st_size > 1000 and not (tmp_path / "scene_growth.csv").exists()
    with pytest.raises(SystemExit) as stop:
        apg_costs_main(["--mesh-detail", "1,2"])
    assert stop.value.code == 2 and "give --scene-growth TASK too" in capsys.readouterr().err


def test_the_bootstrap_branch_a_gpu_runs_every_step_leaves_the_loss_and_its_gradient_unchanged(monkeypatch):
    """On a GPU the truncated envs' last values are computed every step (asking whether any env ended
    would stall the device): where none ended, that must change neither the actor loss nor its gradient."""
    import algorithms.shac

    results = []
    for always in (False, True):
        if always:
            monkeypatch.setattr(algorithms.shac, "branch_needed", lambda mask: True)
        learner, env = learner_for("shac")
        env.episode_length = 3  # a truncation inside the 4-step window
        loss, _ = learner.window_loss()
        results.append((loss.detach(), actor_gradient(learner)))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_one_normaliser_per_window_updated_once_after_it_with_the_windows_raw_states():
    """D.Va and SHAC normalise a whole window with the statistics at its start, store those normalised
    states for the critic, and fold the window's raw states (its start and every state after a step)
    into the statistics once, after it."""
    learner, env = learner_for("shac")
    seen, updates, raw = [], [], [learner.state.clone()]
    normalize, update, step = learner.obs_rms.normalize, learner.obs_rms.update, env.step

    def recording_normalize(x):
        seen.append((learner.obs_rms.mean.clone(), learner.obs_rms.var.clone()))
        return normalize(x)

    def recording_step(actions):
        out = step(actions)
        raw.append(out[-1]["state"].detach().clone())
        return out

    def recording_update(batch):
        updates.append(len(seen))
        update(batch)

    learner.obs_rms.normalize, learner.obs_rms.update, env.step = recording_normalize, recording_update, recording_step
    critic_data = []
    train_critic = learner._train_critic
    learner._train_critic = lambda *window: critic_data.append(window[0].clone()) or train_critic(*window)

    initial = (learner.obs_rms.mean.clone(), learner.obs_rms.var.clone())
    learner.train_iteration()
    assert len(updates) == 1 and len(seen) == updates[0] > 4  # every normalisation of the window came first
    assert all(torch.equal(mean, initial[0]) and torch.equal(var, initial[1]) for mean, var in seen)
    expected = RunningMeanStd((env.state_dim,))
    expected.update(torch.stack(raw))  # start + 4 steps
    assert torch.allclose(learner.obs_rms.mean, expected.mean, atol=1e-5)
    assert torch.allclose(learner.obs_rms.var, expected.var, rtol=1e-4)
    stored = (torch.stack(raw[:4]) - initial[0]) / torch.sqrt(initial[1] + 1e-5)
    assert torch.allclose(critic_data[0], stored)  # normalised as the window saw them, not re-normalised after

    after_first = (learner.obs_rms.mean.clone(), learner.obs_rms.var.clone())
    seen.clear()
    learner.train_iteration()
    assert len(updates) == 2 and all(torch.equal(m, after_first[0]) and torch.equal(v, after_first[1]) for m, v in seen)


def test_the_critic_trains_on_fixed_time_ordered_chunks_as_shacs_critic_dataset():
    learner, env = learner_for("shac")
    h, n, d = 4, 4, env.state_dim
    state_buf = torch.randn(h, n, d)
    inputs = []
    learner.critic.register_forward_hook(lambda module, args, out: inputs.append(args[0].clone()))
    learner._train_critic(state_buf, torch.randn(h, n), torch.zeros(h, n), torch.randn(h, n))
    flat = state_buf.reshape(-1, d)
    chunks = [flat[k * 4 : (k + 1) * 4] for k in range(4)]  # 16 states / 4 minibatches: one time step each
    expected = chunks * learner.config.critic_iterations
    assert len(inputs) == len(expected) and all(torch.equal(a, b) for a, b in zip(inputs, expected, strict=True))


def test_an_iterations_profile_puts_its_time_in_the_simulator_the_renderer_and_the_encoder():
    from benchmark.speed.profile_iteration import OUTSIDE, profile_iteration

    tiny = ["num_envs=2", "horizon=2", "image_size=24", "frames=3"]
    wall, seconds = profile_iteration("dva", "cartpole", tiny, warmup=1)
    for group in ("simulator forward", "simulator backward", "rendering", "convolutions, forward",
                  "convolutions, backward", "optimiser steps and clipping"):  # fmt: skip
        assert seconds.get(group, 0.0) > 0, group
    assert sum(seconds.values()) == pytest.approx(wall, rel=0.02) and seconds[OUTSIDE] < wall


def test_dvas_channels_last_encoder_changes_its_losses_only_by_float_rounding():
    """On the CPU the APG encoder's convolutions run channels-last (oneDNN's faster layout): the same
    maths, summed in another order. Against the default layout from the same seed, three iterations'
    actor and critic losses agree to 1e-4 relative: float32 rounding (1e-7 per operation) grown through
    a window and two updates stays orders below that, while any real change (a transposed image, a
    lost channel, a layout that reorders the weights) moves the first loss by percents."""
    losses = {}
    for layout in (torch.channels_last, torch.contiguous_format):
        learner, _ = learner_for("dva", overrides=("iterations=3",))
        assert learner.encoder.convs[0].weight.is_contiguous(memory_format=torch.channels_last)
        learner.encoder.to(memory_format=layout)
        metrics = [learner.train_iteration() for _ in range(3)]
        losses[layout] = torch.tensor([[m["actor_loss"], m["critic_loss"]] for m in metrics], dtype=torch.float64)
    torch.testing.assert_close(losses[torch.channels_last], losses[torch.contiguous_format], rtol=1e-4, atol=1e-6)
