"""State SHAC end to end through the runner, the results schema, and the config front door."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from algorithms import get_learner, registry
from benchmark.config import ConfigError, learner_config, load_config, parse_budget
from benchmark.floors import policy_returns
from benchmark.results import METRIC_COLUMNS, checkpoints, load_run_config
from benchmark.run import beside_floors, run
from envs import DiffEnv
from envs.tasks import registry as task_registry

TASKS = ", ".join(task_registry())


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    cfg = load_config(
        "shac",
        "cartpole",
        [
            "num_envs=16",
            "iterations=40",
            f"results_dir={out}",
            "run_name=smoke",
            "checkpoint_every=10",
            "keep_checkpoints=2",
        ],
    )
    return run(cfg, progress=False)


def test_state_shac_beats_the_random_policy_on_cartpole_by_500(cartpole_run):
    """Against the random policy, not the run's first episodes: whether those end early (the cart leaves
    the rail) or last the full 240 steps depends on the untrained policy, and the first 5 iterations
    (160 steps) may finish none."""
    returns = pd.read_csv(cartpole_run / "metrics.csv")["train_return"].to_numpy()
    floor, late = policy_returns("cartpole", "random", 1, 256).mean(), np.nanmean(returns[-10:])
    assert late > floor + 500, (floor, late)
    summary = json.loads((cartpole_run / "summary.json").read_text())
    assert summary["eval_return"] > floor + 500


def test_results_follow_the_schema(cartpole_run):
    metrics = pd.read_csv(cartpole_run / "metrics.csv")
    assert list(metrics.columns[: len(METRIC_COLUMNS)]) == METRIC_COLUMNS
    assert len(metrics) == 40 and metrics["iteration"].tolist() == list(range(1, 41))
    assert metrics["wall_clock"].is_monotonic_increasing
    assert (metrics["env_steps"] == metrics["iteration"] * 32 * 16).all()
    for phase in ("time_forward", "time_backward", "time_update"):
        assert (metrics[phase] > 0).all()
    assert (metrics["peak_memory_mb"] > 0).all() and (metrics["actor_grad_norm"] > 0).all()

    summary = json.loads((cartpole_run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["iterations"] == 40
    assert summary["first_iteration_s"] == pytest.approx(metrics["wall_clock"].iloc[0])  # the one-off cost, named
    # a SHAC window of 32 taped steps: a forward and a backward graph per step slot, captured in the first
    assert summary["graphs_captured"] == 2 * 32 and summary["graph_capture_s"] > 0
    config = yaml.safe_load((cartpole_run / "config.yaml").read_text())
    assert config["num_envs"] == 16 and config["actor_lr"] == 1e-2  # YAML value + override

    assert [p.name for p in checkpoints(cartpole_run)] == ["iter-000030.pt", "iter-000040.pt"]
    state = torch.load(checkpoints(cartpole_run)[-1], weights_only=True)
    cfg = load_config("shac", "cartpole", ["num_envs=4"])
    learner = get_learner("shac")(DiffEnv("cartpole", 4, device="cpu"), learner_config(cfg))
    learner.load_state_dict(state["learner"])
    assert state["runner"]["iteration"] == 40 and state["runner"]["env_steps"] == 40 * 32 * 16
    assert learner.iteration == 40


def test_dpg_state_is_shac_with_shacs_own_settings_and_the_actor_input_detached():
    """Fig. 13 (the paper's Appendix D.1) sets DPG beside SHAC with SHAC's own (DiffRL's) settings."""
    shac, dpg = load_config("shac_diffrl", "hopper"), load_config("dpg_state", "hopper")
    assert shac.num_envs == 256 and load_config("shac_diffrl", "cartpole").iterations == 500
    assert not shac.detach_actor_input and dpg.detach_actor_input
    assert {k: v for k, v in dpg.items() if k not in ("algo", "detach_actor_input")} == {
        k: v for k, v in shac.items() if k not in ("algo", "detach_actor_input")
    }


def test_cpu_preset_sits_between_the_algo_file_and_the_command_line():
    cfg = load_config("dva", "cartpole", ["preset=cpu", "image_size=32"])
    assert (cfg.num_envs, cfg.image_size, cfg.renderer, cfg.actor_lr) == (16, 32, "newton", 2e-3)
    with pytest.raises(ConfigError, match="unknown preset 'gpu'; choose one of: cpu"):
        load_config("dva", "cartpole", ["preset=gpu"])


def test_overrides_and_budget():
    cfg = load_config("shac", "hopper", ["num_envs=16", "seed=3", "budget=30min"])
    assert (cfg.num_envs, cfg.seed, cfg.budget) == (16, 3, "30min")
    assert parse_budget("30min") == (1800.0, None)
    assert parse_budget("2h") == (7200.0, None)
    assert parse_budget("1e6steps") == (None, 1_000_000)
    with pytest.raises(ConfigError, match="budget=30min"):
        parse_budget("thirty minutes")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("shac", "hopper", ["num_env=16"]),
            r"unknown config key 'num_env' \(did you mean 'num_envs'\?\); valid keys: ",
        ),
        (("shac", "hoper", []), re.escape(f"unknown task 'hoper' (did you mean 'hopper'?); choose one of: {TASKS}")),
        (("dreamer", "hopper", []), "unknown algorithm 'dreamer'; choose one of: "),
        (("shac", "hopper", ["seed=three"]), "invalid value for 'seed'"),
        (
            ("shac", "hopper", ["learner=ppo"]),
            f"unknown learner 'ppo'; choose one of: {', '.join(registry())}",
        ),
        (("shac", "hopper", ["contact_law=mujoco"]), "unknown contact_law 'mujoco'; choose one of: dflex, newton"),
        (("shac", "hopper", ["eval_max_steps=0"]), "eval_max_steps=0: must be at least 1"),
    ],
)
def test_bad_input_is_a_one_line_error(args, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_config(*args)
    assert "\n" not in str(error.value)


def test_command_line_reports_errors_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "benchmark.run", "shac", "cartpole", "actor_lrr=1"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown config key 'actor_lrr'")


def test_learning_curve_figure_has_one_line_per_run(cartpole_run, tmp_path):
    import matplotlib.pyplot as plt

    from benchmark.figures.plots import plot_learning_curves

    fig = plot_learning_curves([cartpole_run, cartpole_run], tmp_path / "curves.png")
    ax_time, ax_steps = fig.axes
    metrics = pd.read_csv(cartpole_run / "metrics.csv")
    assert len(ax_time.lines) == 2 and len(ax_steps.lines) == 2
    assert np.allclose(ax_time.lines[0].get_xdata(), metrics["wall_clock"] / 60)
    assert np.allclose(ax_steps.lines[0].get_xdata(), metrics["env_steps"])
    assert ax_time.get_xlabel() == "wall-clock (min)" and (tmp_path / "curves.png").stat().st_size > 10_000
    plt.close(fig)


def test_re_evaluation_reproduces_the_runs_final_evaluation_and_adds_the_sampled_one(cartpole_run, capsys):
    """benchmark.evaluate on the newest checkpoint, with the run's own eval envs, gives the summary's
    deterministic return exactly; the sampled return is the training policy's, reported beside it
    (its noise comes from the global generator, so a re-evaluation draws other samples)."""
    from benchmark.evaluate import main as evaluate_main

    summary = json.loads((cartpole_run / "summary.json").read_text())
    assert np.isfinite(summary["eval_return_sampled"]) and summary["eval_episode_length_sampled"] > 0
    evaluate_main([str(cartpole_run), "--envs", "16"])
    mean_line, sampled_line = capsys.readouterr().out.splitlines()
    assert "mean action" in mean_line and f"return {summary['eval_return']:.1f}," in mean_line
    sampled = float(sampled_line.split("return ")[1].split(",")[0])  # fresh noise: close, not equal
    assert "sampled" in sampled_line and abs(sampled - summary["eval_return_sampled"]) < 0.05 * abs(sampled) + 50


def test_evaluation_episodes_can_be_cut_short(tmp_path):
    """eval_max_steps bounds both evaluations; an episode cut short counts its return so far."""
    cfg = load_config("shac", "cartpole", ["num_envs=4", "iterations=1", "eval_envs=3", "eval_max_steps=7",
                                           f"results_dir={tmp_path}", "run_name=cut"])  # fmt: skip
    summary = json.loads((run(cfg, progress=False) / "summary.json").read_text())
    assert summary["eval_episode_length"] <= 7 and summary["eval_episode_length_sampled"] <= 7
    assert abs(summary["eval_return"]) <= 7 * 40  # at most 7 rewards of the cartpole's scale


def test_curve_labels_name_the_settings_that_differ(tmp_path):
    """Two runs of one seed that differ in a setting are told apart by it; the seed never counts."""
    from benchmark.figures.plots import run_labels

    runs = []
    for name, extra in (("a", {"contact_law": "dflex", "seed": 0}), ("b", {"contact_law": "newton", "seed": 0})):
        (tmp_path / name).mkdir()
        config = {"algo": "shac", "task": "hopper", "num_envs": 256, "run_name": name, **extra}
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump(config))
        runs.append(tmp_path / name)
    assert run_labels(runs) == ["shac hopper seed 0 contact_law=dflex", "shac hopper seed 0 contact_law=newton"]
    (tmp_path / "c").mkdir()  # another learner: its own keys do not label the others, nor theirs it
    config = {"algo": "dreamerv3", "task": "hopper", "num_envs": 4, "train_ratio": 128, "seed": 0}
    (tmp_path / "c" / "config.yaml").write_text(yaml.safe_dump(config))
    labels = run_labels([*runs, tmp_path / "c"])
    assert labels[1:] == ["shac hopper seed 0 contact_law=newton", "dreamerv3 hopper seed 0"]


def test_the_end_line_sets_the_final_training_return_beside_the_published_value(cartpole_run):
    """Published returns are read off sampled training curves: the summary's final training return is the
    mean over the last 10% of the run's wall-clock, by hand, and the end line sets it, not the
    deterministic evaluation, beside the published value."""
    metrics = pd.read_csv(cartpole_run / "metrics.csv")
    last = metrics.loc[metrics["wall_clock"] >= 0.9 * metrics["wall_clock"].iloc[-1], "train_return"]
    summary = json.loads((cartpole_run / "summary.json").read_text())
    assert summary["final_train_return"] == pytest.approx(np.nanmean(last))
    assert summary["learner"] == "shac" and summary["learner_version"] == get_learner("shac").version
    line = beside_floors(summary, load_run_config(cartpole_run))
    final, evaluation = f"{summary['final_train_return']:.0f}", f"{summary['eval_return']:.0f}"
    assert re.search(rf"final training return {final} \(sampled .*\) vs published ~\S+ .*deterministic "
                     rf"evaluation {evaluation};", line), line  # fmt: skip
