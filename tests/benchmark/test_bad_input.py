"""Bad input costs one line on stderr that names the fix, exit code 2, and nothing written; a run that
fails once started says so in one line and in its summary; a GPU-sized run on a CPU says how long it
would take and what to run instead."""

import json

import pandas as pd
import pytest
import torch

from algorithms.shac import SHAC
from benchmark.config import load_config
from benchmark.run import main, run
from envs.render import renderers
from envs.tasks import registry as task_registry

RENDERERS = ", ".join(renderers())

TINY = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "checkpoint_every=5", "run_name=r"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval_envs=0", "eval_envs=0: must be in [1, 65536]"),
        ("checkpoint_every=0", "checkpoint_every=0: must be at least 1"),
        ("num_envs=0", "num_envs=0: must be in [1, 65536]"),
        ("max_skipped_updates=0", "max_skipped_updates=0: must be at least 1"),
        ("budget=0s", "budget '0s' is not positive"),
        ("budget=e5s", "budget 'e5s' not understood; use e.g. budget=30min"),
        ("logger=foo", "unknown logger 'foo'; choose one of: none, wandb"),
        ("renderer=vulkan", f"unknown renderer 'vulkan'; choose one of: {', '.join(renderers())}"),
        ("device=gpu", "unknown device 'gpu'; use device=auto"),
        ("horizon=0", "horizon=0: must be in [1, 4096]"),
        ("gamma=1.5", "gamma=1.5: must be in [0, 1]"),
        ("actor_hidden=[]", "actor_hidden=[]: give one or more values in [1, 16384]"),
        ("run_name=../x", "run_name='../x': give one plain name"),
        ("run_name=/tmp/x", "run_name='/tmp/x': give one plain name"),
        ("preset=../shac/hopper", "unknown preset '../shac/hopper'"),
        ("budget=0.5steps", "budget '0.5steps': env steps are whole"),
        ("actor_lr=inf", "actor_lr=inf: must be a finite number"),
        ("log_std_init=nan", "log_std_init=nan: must be a finite number"),
        ("seed=4294967296", "seed=4294967296: must be in [0, 4294967295]"),
        ("num_envs=100000000", "num_envs=100000000: must be in [1, 65536]"),
        ("results_dir=${oc.env:HOME}", "override 'results_dir=${oc.env:HOME}': interpolations"),
        ("algo=dva", "override 'algo=dva': the algo and the task are the command's first two words"),
        ("task=hopper", "override 'task=hopper': the algo and the task are the command's first two words"),
        ("horizon=100000000", "horizon=100000000: must be in [1, 4096]"),
        ("actor_hidden=[60000,60000]", "actor_hidden=[60000, 60000]: give one or more values in [1, 16384]"),
        ("frames=200000", "frames=200000: must be in [1, 16]"),
        ("image_size=60000", "image_size=60000: must be at most 1024"),
        ("run_name=" + "a" * 300, "run_name has 300 characters: give at most 200"),
        ("results_dir=/tmp/" + "b/" * 2000, "results_dir is 4005 characters long"),
    ],
)
def test_a_bad_value_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, override, message):
    with pytest.raises(SystemExit) as exit_:
        main(["shac", "cartpole", *TINY, f"results_dir={tmp_path}", override, "--no-progress"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())


def test_a_cuda_device_on_a_machine_without_one_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        main(["shac", "cartpole", *TINY, f"results_dir={tmp_path}", "device=cuda"])
    assert capsys.readouterr().err.startswith("error: device=cuda, but torch sees no CUDA GPU on this machine")


def test_a_missing_optional_renderer_names_its_install_command(tmp_path, capsys, monkeypatch):
    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "sapien" else real(name, *a))
    with pytest.raises(SystemExit):
        main(["dva", "cartpole", *TINY, f"results_dir={tmp_path}", "renderer=maniskill", "image_size=32"])
    err = capsys.readouterr().err
    assert err.startswith("error: renderer 'maniskill' needs SAPIEN: pip install '.[maniskill]'")
    assert err.count("\n") == 1 and not any(tmp_path.iterdir())


def test_a_run_that_fails_once_started_is_one_line_and_failed_in_its_summary(tmp_path, capsys, monkeypatch):
    step = SHAC.train_iteration

    def breaks_at_3(self):
        if self.iteration == 2:
            raise RuntimeError("the simulator broke")
        return step(self)

    monkeypatch.setattr(SHAC, "train_iteration", breaks_at_3)
    with pytest.raises(SystemExit) as exit_:
        main(["shac", "cartpole", *TINY, f"results_dir={tmp_path}", "iterations=10", "--no-progress"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: run failed: RuntimeError: the simulator broke (traceback in {tmp_path}/r/summary.json)\n"
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "RuntimeError: the simulator broke"
    assert summary["iterations"] == 2 and "breaks_at_3" in summary["traceback"]
    assert pd.read_csv(tmp_path / "r" / "metrics.csv")["iteration"].tolist() == [1, 2]  # finished work kept


class SlowClock:
    """``time`` for ``benchmark.run`` in which every iteration (read at its start and end) takes 10 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 10.0
        return self.now


def test_a_gpu_sized_run_on_a_cpu_says_how_long_and_what_to_run_instead(tmp_path, capsys, monkeypatch):
    step = SHAC.train_iteration

    def stops_at_4(self):
        if self.iteration == 3:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(SHAC, "train_iteration", stops_at_4)
    monkeypatch.setattr("benchmark.run.time", SlowClock())
    cfg = load_config("shac", "cartpole", [*TINY, f"results_dir={tmp_path}", "iterations=1003"])
    with pytest.raises(KeyboardInterrupt):
        run(cfg, progress=False)
    assert capsys.readouterr().err == (
        "note: on this CPU the run takes ~3 h (10.0 s per iteration, 1000 to go); a CPU-sized run: "
        "make bench ALGO=shac TASK=cartpole PRESET=cpu BUDGET=1h\n"
    )
    with pytest.raises(KeyboardInterrupt):
        run(load_config("shac", "cartpole", [*TINY, f"results_dir={tmp_path}", "iterations=1003", "budget=2h"]))
    assert "note:" not in capsys.readouterr().err  # a budget says the user knows how long it runs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "gpu"], "unknown preset 'gpu'; choose one of: cpu"),
        (["--learners", "shac_diffrender,dva"], "--learners shac_diffrender,dva: start with dva, the one"),
        (
            ["--learners", "dva,shac_diffrender@vulkan"],
            f"unknown renderer 'vulkan'; choose one of: {', '.join(renderers())}",
        ),
    ],
)
def test_apg_costs_with_bad_arguments_overwrites_nothing(tmp_path, capsys, argv, message):
    from benchmark.speed import apg_costs

    (tmp_path / "apg_costs.md").write_text("earlier results")
    with pytest.raises(SystemExit) as exit_:
        apg_costs.main([*argv, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert [p.name for p in tmp_path.iterdir()] == ["apg_costs.md"]
    assert (tmp_path / "apg_costs.md").read_text() == "earlier results"


def test_render_views_with_fewer_steps_than_its_still_frame(tmp_path):
    from benchmark.figures import render_views

    render_views.main(["cartpole", "--backends", "newton", "--envs", "2", "--size", "16", "--steps", "3",
                       "--out", str(tmp_path)])  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartpole-newton-grid.png", "cartpole-newton-rollout.gif"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["hoper"],
            f"task: unknown name 'hoper' (did you mean 'hopper'?); choose from: {', '.join(task_registry())}",
        ),
        (
            ["hopper", "--backends", "newton,vulkan"],
            f"--backends: unknown name 'vulkan'; choose from: {RENDERERS}",
        ),
    ],
)
def test_render_views_refuses_bad_names_in_one_line(argv, message, tmp_path, capsys):
    from benchmark.figures import render_views

    with pytest.raises(SystemExit) as exit_:
        render_views.main([*argv, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_render_views_skips_backends_not_installed_unless_asked(tmp_path, capsys, monkeypatch):
    from benchmark.figures import render_views

    monkeypatch.setattr("benchmark.cli.install_hint", lambda b: "pip install x" if b != "newton" else None)
    render_views.main(["cartpole", "--envs", "1", "--size", "16", "--steps", "2", "--out", str(tmp_path)])
    assert {p.name.split("-")[1] for p in tmp_path.iterdir()} == {"newton"}
    assert capsys.readouterr().err.splitlines() == [
        "note: skipping diff: pip install x",
        "note: skipping maniskill: pip install x",
        "note: skipping pytorch3d: pip install x",
    ]
    with pytest.raises(SystemExit):
        render_views.main(["cartpole", "--backends", "diff", "--out", str(tmp_path)])
    assert capsys.readouterr().err == "error: pip install x\n"
