"""Results that outlive the machine: provenance on every run, the compact curves and the publishing rules
of the reference set, campaigns that submit only what is missing, and a manifest for every figure."""

import functools
import gzip
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from algorithms import get_learner
from benchmark import campaign as campaigns
from benchmark.build import restore_learner
from benchmark.config import ConfigError, load_config
from benchmark.figures import manifest, report
from benchmark.provenance import ROOT, git_state, versions
from benchmark.reference import compact_curve, publish, without_machine_paths
from benchmark.results import DamagedRun, checkpoints, final_training, load_metrics
from benchmark.run import run

TINY = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "eval_max_steps=10", "iterations=3"]


def tiny_run(results: Path, seed: int = 0, name: str = "r", *extra: str) -> Path:
    return run(load_config("shac", "cartpole", [*TINY, f"seed={seed}", f"results_dir={results}", f"run_name={name}",
                                                *extra]), progress=False)  # fmt: skip


# ---------------------------------------------------------------------------------------------- provenance
def test_a_dirty_clone_records_dirty_and_the_hash_of_its_diff(tmp_path):
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True, text=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "f.py").write_text("x = 1\n")
    git("add", "f.py")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "one")
    clean = git_state(tmp_path)
    assert clean["dirty"] is False and clean["diff_sha256"] is None and re.fullmatch(r"[0-9a-f]{40}", clean["commit"])
    (tmp_path / "f.py").write_text("x = 2\n")
    dirty = git_state(tmp_path)
    diff = git("diff", "HEAD").stdout
    assert dirty["dirty"] is True and dirty["commit"] == clean["commit"]
    assert dirty["diff_sha256"] == hashlib.sha256(diff.encode()).hexdigest()


def test_every_run_writes_its_provenance_and_completes_it(tmp_path):
    out = tiny_run(tmp_path)
    record = json.loads((out / "provenance.json").read_text())
    assert record["status"] == "complete" and record["start"] <= record["end"]
    assert record["versions"]["torch"] == importlib.metadata.version("torch") == versions()["torch"]
    assert record["versions"]["warp-lang"] == importlib.metadata.version("warp-lang")
    assert record["command"][:3] == ["python", "-m", "pytest"] or record["command"][0] == "python"
    assert record["device"]["type"] == "cpu" and record["git"]["commit"] == git_state()["commit"]
    assert len(record["config_sha256"]) == 64
    text = (out / "provenance.json").read_text()
    assert str(Path.home()) not in text or str(Path.home()) in ("/", "")  # who ran it is not recorded


# ---------------------------------------------------------------------------------------------- compact curves
def test_the_compact_curve_keeps_the_ends_the_best_row_the_time_phases_and_every_window_mean():
    rng = np.random.default_rng(0)
    n = 5000
    metrics = pd.DataFrame({"iteration": np.arange(1, n + 1), "wall_clock": np.cumsum(rng.uniform(1, 2, n)),
                            "env_steps": 512 * np.arange(1, n + 1), "train_return": np.sin(np.arange(n) / 400) * 1000
                            + rng.normal(0, 50, n), "time_forward": rng.uniform(0.5, 1, n)})  # fmt: skip
    metrics.loc[::7, "train_return"] = np.nan  # iterations that finished no episode
    compact = compact_curve(metrics)
    assert len(compact) <= 1000 and compact["rows"].sum() == n
    best = metrics["train_return"].idxmax()
    for index in (0, best, n - 1):  # kept whole
        row = compact[compact["iteration"] == metrics.loc[index, "iteration"]].iloc[0]
        assert row["rows"] == 1 and row["train_return"] == pytest.approx(
            metrics.loc[index, "train_return"], nan_ok=True
        )
    assert compact["time_forward"].sum() == pytest.approx(metrics["time_forward"].sum())
    assert compact["wall_clock"].iloc[-1] == metrics["wall_clock"].iloc[-1]
    spread = np.nanmax(metrics["train_return"]) - np.nanmin(metrics["train_return"])
    for start in range(0, n - 250, 250):  # windows of 5% of the run: within 2% of the curve's range
        window = metrics.iloc[start : start + 250]
        inside = compact[(compact["iteration"] > start) & (compact["iteration"] <= start + 250)].dropna()
        ours = np.average(inside["train_return"], weights=inside["rows"])
        assert abs(ours - np.nanmean(window["train_return"])) < 0.02 * spread
    pd.testing.assert_frame_equal(compact_curve(compact), compact)  # publishing a shipped cell changes nothing
    halved = compact_curve(compact, max_rows=500)  # compacting a compact curve again adds up its rows
    assert len(halved) <= 500 and halved["rows"].sum() == n


def test_a_shipped_runs_final_training_return_is_the_one_its_whole_metrics_give(tmp_path):
    """A bin's mean weighs an iteration that finished one episode like one that finished many, so where
    the rate of finished episodes swings (a hopper that walks, then falls) the compact curve's last 10%
    reads differently from the whole metrics: a
    shipped run reads the value its run recorded from them; one that recorded none, the curve's."""
    n = 4000
    step = np.arange(n)
    walking = (step // 50) % 2 == 0  # blocks of 50 iterations: walking (an episode of 4000 ends every 10th) ...
    returns = np.where(walking, np.where(step % 10 == 0, 4000.0, np.nan), 1000.0)  # ... or falling, every one
    local, shipped = tmp_path / "local", tmp_path / "shipped"
    local.mkdir()
    shipped.mkdir()
    pd.DataFrame({"iteration": np.arange(1, n + 1), "wall_clock": np.arange(1, n + 1) * 1.5,
                  "env_steps": 512 * np.arange(1, n + 1), "train_return": returns}).to_csv(local / "metrics.csv",
                                                                                          index=False)  # fmt: skip
    whole = final_training(local)["train_return"]
    compact_curve(load_metrics(local)).to_csv(shipped / "curve.csv.gz", index=False)
    (shipped / "summary.json").write_text(json.dumps({"status": "complete"}))
    from_bins = final_training(shipped)["train_return"]
    assert abs(from_bins - whole) > 20  # the bias the recorded value removes
    (shipped / "summary.json").write_text(json.dumps({"status": "complete", "final_train_return": whole}))
    assert final_training(shipped)["train_return"] == whole
    (shipped / "summary.json").write_text(json.dumps({"status": "complete", "final_train_return": "3000"}))
    assert final_training(shipped)["train_return"] == from_bins  # a value of the wrong kind is not read


# ---------------------------------------------------------------------------------------------- publishing
def test_a_finished_run_is_published_with_its_compact_curve_and_no_checkpoints(tmp_path):
    out = tiny_run(tmp_path / "results")
    target = publish(out, tmp_path / "reference", allow_dirty=True)
    task, algo, experiment, seed = target.relative_to(tmp_path / "reference").parts
    assert (task, algo, experiment, seed) == ("cartpole", "shac", "horizon-8_iterations-3_num_envs-4", "seed0")
    assert sorted(p.name for p in target.iterdir()) == [
        "config.yaml",
        "curve.csv.gz",
        "provenance.json",
        "summary.json",
    ]
    assert pd.read_csv(target / "curve.csv.gz")["iteration"].tolist() == [1, 2, 3]
    filmed = tiny_run(tmp_path / "results", 1, "filmed")  # a run with a video ships its WebM and poster only
    (filmed / "video").mkdir()
    for name in ("policy.webm", "policy.mp4", "policy.png"):
        (filmed / "video" / name).write_bytes(name.encode())
    shipped = publish(filmed, tmp_path / "reference", allow_dirty=True) / "video"
    assert sorted(p.name for p in shipped.iterdir()) == ["policy.png", "policy.webm"]
    assert (shipped / "policy.webm").read_bytes() == b"policy.webm"


REFUSED = {"running": "publish it when it has finished", "interrupted": "publish it when it has finished",
           "older task version": "holds version", "older learner version": "the code's learners only",
           "duplicate seed": "already holds seed 0",
           "dirty tree": "--allow-dirty", "teacher without checkpoint": "no checkpoint to ship",
           "task is a path": "not a task and algo of this suite",
           "algo climbs out": "not a task and algo of this suite",
           "interpolation": "holds an interpolation", "alias bomb": "aliases",
           "config links out": "a link out of the run"}  # fmt: skip
HOSTILE_CONFIGS = {
    "task is a path": "task: {tmp}/elsewhere\n",
    "algo climbs out": "algo: ../../../..\n",
    "interpolation": "note: ${{oc.env:HOME}}\n",
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
}


@pytest.mark.parametrize("case", REFUSED)
def test_publishing_refuses_what_is_not_a_finished_current_clean_new_seed(tmp_path, case):
    out = tiny_run(tmp_path / "results")
    summary = json.loads((out / "summary.json").read_text())
    reference = tmp_path / "reference"
    allow_dirty = True
    if case in ("running", "interrupted"):
        (out / "summary.json").write_text(json.dumps({**summary, "status": case}))
    elif case == "older task version":
        (out / "summary.json").write_text(json.dumps({**summary, "task_version": summary["task_version"] - 1}))
    elif case == "older learner version":
        (out / "summary.json").write_text(json.dumps({**summary, "learner_version": summary["learner_version"] - 1}))
    elif case == "duplicate seed":
        publish(out, reference, allow_dirty=True)
    elif case == "teacher without checkpoint":
        shutil.rmtree(out / "checkpoints")
    elif case in HOSTILE_CONFIGS:  # a run's config is input: it must not choose where publishing writes
        with (out / "config.yaml").open("a") as config:
            config.write(HOSTILE_CONFIGS[case].format(tmp=tmp_path))
    elif case == "config links out":
        (tmp_path / "elsewhere.yaml").write_text((out / "config.yaml").read_text())
        (out / "config.yaml").unlink()
        (out / "config.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    else:
        provenance = json.loads((out / "provenance.json").read_text())
        provenance["git"].update(dirty=True, diff_sha256="ab" * 32)
        (out / "provenance.json").write_text(json.dumps(provenance))
        allow_dirty = False
    before = sorted(str(p) for p in reference.rglob("*")) if reference.exists() else []
    with pytest.raises(ConfigError) as error:
        publish(out, reference, allow_dirty=allow_dirty, with_checkpoint=case == "teacher without checkpoint")
    assert "\n" not in str(error.value)
    assert REFUSED[case] in str(error.value)
    assert (sorted(str(p) for p in reference.rglob("*")) if reference.exists() else []) == before
    assert not (tmp_path / "elsewhere").exists()


def test_a_published_cell_holds_no_path_of_the_machine_it_ran_on(tmp_path):
    out = tiny_run(tmp_path / "results", 0, "r", f"teacher_run={tmp_path}/nowhere")
    target = publish(out, tmp_path / "reference", allow_dirty=True)
    for shipped in target.rglob("*"):
        if shipped.is_file() and shipped.suffix != ".gz":
            assert str(tmp_path) not in shipped.read_text(), shipped
    config = yaml.safe_load((target / "config.yaml").read_text())
    assert (config["results_dir"], config["teacher_run"]) == ("results", "teacher")
    provenance = json.loads((target / "provenance.json").read_text())
    assert provenance["paths_rewritten_when_shipped"] == ["results_dir", "teacher_run"]
    command = ["python", "-m", "benchmark.run", f"results_dir={tmp_path}", "seed=0", f"teacher_run={tmp_path}/t",
               f"{tmp_path}/.sweep/logs"]  # fmt: skip
    _, shipped = without_machine_paths({}, {"command": command, "earlier": [{"command": command}]})
    expected = ["python", "-m", "benchmark.run", "results_dir=results", "seed=0", "teacher_run=teacher"]
    expected.append("<machine>/logs")
    assert shipped["command"] == expected and shipped["earlier"][0]["command"] == expected
    assert provenance["config_sha256"] == json.loads((out / "provenance.json").read_text())["config_sha256"]


# ---------------------------------------------------------------------------------------------- campaigns
def test_a_campaign_submits_exactly_the_cells_the_reference_set_lacks(tmp_path, capsys):
    results, reference = tmp_path / "campaigns", tmp_path / "reference"
    plan = campaigns.Campaign(name="t", learners=["shac"], tasks=["cartpole"], seeds=[0, 1, 2, 3], preset=None,
                              budget={"cartpole": "1h"}, overrides=TINY, executor="inline", parallel=1)  # fmt: skip
    for seed in (1, 3):  # two cells already shipped (run elsewhere, then published)
        cfg_overrides = plan.overrides_for("shac", "cartpole", seed, tmp_path / "elsewhere")
        out = run(load_config("shac", "cartpole", cfg_overrides), progress=False)
        publish(out, reference, allow_dirty=True)
    cells = campaigns.to_submit(plan, results, reference)
    assert [(c[0], c[1], c[2]) for c in cells] == [("shac", "cartpole", 0), ("shac", "cartpole", 2)]
    args = Namespace(wait=False, parallel=1, time_min=10)
    assert campaigns.submit(plan, args, results, reference) == 2
    records = pd.read_csv(results / "t" / ".sweep" / "jobs.csv")
    assert sorted(records["run"]) == [plan.run_name("shac", "cartpole", 0), plan.run_name("shac", "cartpole", 2)]
    command = json.loads((results / "t" / plan.run_name("shac", "cartpole", 0) / "provenance.json").read_text())
    command = command["command"]
    assert command[:5] == ["python", "-m", "benchmark.run", "shac", "cartpole"]  # the run's, not the job's
    capsys.readouterr()
    grid = campaigns.print_grid(plan, results, reference)
    assert grid.set_index("seed")["state"].to_dict() == {0: "done", 1: "published", 2: "done", 3: "published"}
    assert "| cartpole | shac | done (complete) | published (complete) |" in capsys.readouterr().out
    assert campaigns.to_submit(plan, results, reference) == []


DAMAGE = {
    "not json": "{status: complete",
    "a list": "[1, 2]",
    "no status": '{"seed": 1}',
    "a version that is text": '{"status": "complete", "task_version": "abc"}',
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_one_damaged_shipped_cell_is_named_and_every_other_cell_still_read(tmp_path, capsys, damage):
    """A shipped cell whose summary is not the runner's: the campaign's grid says ``damaged`` with the
    file at fault and submits nothing over it, the figures' reader leaves it out with a note, publishing
    refuses it in one line; the other cells are read as before."""
    results, reference = tmp_path / "campaigns", tmp_path / "reference"
    plan = campaigns.Campaign(name="t", learners=["shac"], tasks=["cartpole"], seeds=[0, 1], preset=None,
                              budget={"cartpole": "1h"}, overrides=TINY, executor="inline", parallel=1)  # fmt: skip
    outs = [run(load_config("shac", "cartpole", plan.overrides_for("shac", "cartpole", seed, tmp_path / "ran")),
                progress=False) for seed in (0, 1)]  # fmt: skip
    shipped = [publish(out, reference, allow_dirty=True) for out in outs]
    (shipped[1] / "summary.json").write_text(DAMAGE[damage])
    grid = campaigns.grid(plan, results, reference).set_index("seed")
    assert grid.loc[0, "state"] == "published" and grid.loc[1, "state"] == "damaged"
    assert f"{shipped[1]}/summary.json" in grid.loc[1, "detail"]
    assert campaigns.to_submit(plan, results, reference) == []
    capsys.readouterr()
    found = report.collect(reference)
    assert list(found["seed"]) == [0] and f"{shipped[1]} left out" in capsys.readouterr().out
    (outs[1] / "summary.json").write_text(DAMAGE[damage])
    with pytest.raises(ConfigError, match="summary.json"):
        publish(outs[1], tmp_path / "elsewhere", allow_dirty=True)


def test_a_teacher_is_published_with_its_last_checkpoint_and_its_student_runs_where_it_never_ran(tmp_path, monkeypatch):
    """Machine A runs the teacher and publishes it with its checkpoint; machine B (empty results) runs the
    DAgger cell from the reference set alone, writing nothing into it. Published without the checkpoint,
    the student waits and says why."""
    monkeypatch.setattr(campaigns, "film", lambda run: None)  # videos are tested in tests/benchmark/test_video.py
    monkeypatch.setattr(campaigns, "publish", functools.partial(publish, allow_dirty=True))  # a dirty checkout too
    reference = tmp_path / "reference"
    small = ["num_envs=2", "horizon=4", "device=cpu", "eval_envs=2", "eval_max_steps=4", "iterations=2",
             "checkpoint_every=1"]  # fmt: skip
    plan = campaigns.Campaign(name="t", learners=["shac", "dagger"], tasks=["cartpole"], seeds=[0], preset="cpu",
                              budget={"cartpole": "1h"}, overrides=small, executor="inline", parallel=1)  # fmt: skip
    args = Namespace(wait=False, parallel=1, time_min=10)
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    assert campaigns.submit(plan, args, machine_a, reference, only={"learner": ["shac"]}) == 1
    teacher_run = machine_a / "t" / plan.run_name("shac", "cartpole", 0)
    (shipped,) = campaigns.publish_finished(plan, machine_a, reference)
    assert [p.name for p in (shipped / "checkpoints").iterdir()] == ["iter-000002.pt"]  # the last one only
    assert (shipped / "checkpoints" / "iter-000002.pt").read_bytes() == (
        teacher_run / "checkpoints" / "iter-000002.pt"
    ).read_bytes()
    ((algo, task, seed, overrides),) = campaigns.to_submit(plan, machine_b, reference)
    assert (algo, task, seed) == ("dagger", "cartpole", 0) and f"teacher_run={shipped.resolve()}" in overrides
    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*")}
    assert campaigns.submit(plan, args, machine_b, reference) == 1
    student = json.loads((machine_b / "t" / plan.run_name("dagger", "cartpole", 0) / "summary.json").read_text())
    assert student["status"] == "complete" and student["teacher_run"] == str(shipped.resolve())
    assert student["teacher_eval_return"] == json.loads((shipped / "summary.json").read_text())["eval_return"]
    assert {p: p.stat().st_mtime_ns for p in reference.rglob("*")} == before
    # the student's cell ships its policy and its teacher's: filmed and evaluated from the reference set alone
    cells = campaigns.publish_finished(plan, machine_b, tmp_path / "elsewhere")  # another reference set
    (cell,) = [c for c in cells if "dagger" in c.parts]
    assert (cell / "checkpoints").is_dir() and (cell / "teacher" / "checkpoints").is_dir()
    student, _, _ = restore_learner(cell, torch.device("cpu"))
    assert student.act(torch.zeros(1, *student.env.obs_shape, dtype=torch.uint8)).shape == (1, 1)

    shutil.rmtree(shipped / "checkpoints")  # as the cells published before teachers shipped theirs
    grid = campaigns.grid(plan, tmp_path / "c", reference).set_index("learner")
    assert grid.loc["dagger", "state"] == "waiting"
    assert "published without its checkpoint" in grid.loc["dagger", "detail"]


def test_the_cpu_campaign_file_loads_and_names_every_learner_task_and_budget():
    plan = campaigns.Campaign.load("cpu")
    assert len(plan.learners) * len(plan.tasks) * len(plan.seeds) == 56
    assert (
        plan.overrides_for("dagger", "hopper", 1, Path("results/campaigns"))[1] == "budget=30min"
    )  # its own, after its teacher
    with pytest.raises(ConfigError, match="unknown campaign '../cpu'"):
        campaigns.Campaign.load("../cpu")


def test_a_campaign_can_be_narrowed_to_some_tasks_learners_and_seeds_and_refuses_names_it_lacks(tmp_path):
    plan = campaigns.Campaign.load("cpu")
    only = campaigns.narrowing(plan, "hopper", "dva,shac")
    cells = campaigns.to_submit(plan, tmp_path / "campaigns", tmp_path / "reference", only)
    assert [(c[0], c[1], c[2]) for c in cells] == [("shac", "hopper", 0), ("shac", "hopper", 1),
                                                  ("dva", "hopper", 0), ("dva", "hopper", 1)]  # fmt: skip
    with pytest.raises(ConfigError, match="--tasks: 'hoper' is not in campaign 'cpu'"):
        campaigns.narrowing(plan, "hoper", None)
    with pytest.raises(ConfigError, match="--learners: 'ppo' is not in campaign 'cpu'"):
        campaigns.narrowing(plan, None, "dva,ppo")
    only = campaigns.narrowing(plan, "hopper", "dva,shac", "1")
    cells = campaigns.to_submit(plan, tmp_path / "campaigns", tmp_path / "reference", only)
    assert [(c[0], c[1], c[2]) for c in cells] == [("shac", "hopper", 1), ("dva", "hopper", 1)]
    with pytest.raises(ConfigError, match="--seeds: '7' is not in campaign 'cpu'"):
        campaigns.narrowing(plan, None, None, "0,7")


def test_a_campaign_may_give_a_task_fewer_learners_and_refuses_a_name_it_lacks_there(tmp_path, monkeypatch):
    plan = campaigns.Campaign.load("cpu-long")
    grid = campaigns.grid(plan, tmp_path / "campaigns", tmp_path / "reference")
    assert sorted(set(grid[grid["task"] == "ant"]["learner"])) == ["dva", "shac_diffrender"]
    assert sorted(set(grid[grid["task"] == "hopper"]["learner"])) == ["drqv2", "dva", "shac_diffrender"]
    monkeypatch.setattr(campaigns, "CONFIG_DIR", tmp_path)
    (tmp_path / "campaigns").mkdir()
    raw = yaml.safe_load((ROOT / "configs" / "campaigns" / "cpu-long.yaml").read_text())
    (tmp_path / "campaigns" / "typo.yaml").write_text(yaml.safe_dump({**raw, "only": {"ant": ["dva", "drq"]}}))
    with pytest.raises(ConfigError, match="'only' names drq, not among its learners and tasks"):
        campaigns.Campaign.load("typo")


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--partition", "gpu\n#SBATCH --wrap=id", "give a SLURM partition name"),
    ("--partition", "gpu --exclusive", "give a SLURM partition name"),
    ("--results-dir", "results/x\ny", "holds a control character"),
])  # fmt: skip
def test_a_campaigns_job_options_are_checked_in_one_line_before_anything_runs(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as stop:
        campaigns.main(["run", "--name", "cpu", flag, value])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_local_campaign_runs_as_many_at_once_as_asked_and_refuses_an_impossible_number(tmp_path, monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(campaigns, "submit", lambda plan, args, *_, **__: asked.append(args.parallel) or 0)
    monkeypatch.setattr(campaigns, "print_grid", lambda *_: None)
    for flags in ([], ["--parallel", "1"]):
        campaigns.main(["run", "--name", "cpu", "--results-dir", str(tmp_path), *flags])
    assert asked == [2, 1]  # the file's 2, then the flag's
    with pytest.raises(SystemExit) as exit_code:
        campaigns.main(["run", "--name", "cpu", "--results-dir", str(tmp_path), "--parallel", "0"])
    error = capsys.readouterr().err
    assert exit_code.value.code == 2 and "--parallel=0 is impossible" in error and error.count("\n") == 1


def test_a_campaign_table_normalises_by_hand_and_its_figures_name_the_learners_not_yet_run(tmp_path):
    reference = tmp_path / "reference"
    plan = campaigns.Campaign(
        name="t",
        learners=["shac", "dva"],
        tasks=["cartpole"],
        seeds=[0, 1],
        preset=None,
        budget={"cartpole": "1h"},
        overrides=[*TINY, "iterations=40"],
        executor="inline",
        parallel=1,
    )  # fmt: skip  (40 x 8 steps: an episode of 240 ends)
    for seed in (0, 1):
        out = run(load_config("shac", "cartpole", plan.overrides_for("shac", "cartpole", seed, tmp_path / "c")),
                  progress=False)  # fmt: skip
        publish(out, reference, allow_dirty=True)
    cells = report.campaign_runs(report.collect(tmp_path), plan, reference)  # the local copies are not cells
    assert sorted(cells["seed"]) == [0, 1] and all(Path(p).is_relative_to(reference) for p in cells["path"])
    floors = pd.DataFrame(
        {"task": ["cartpole"], "action_repeat": [1], "random_return": [900.0], "zero_return": [2100.0]}
    )
    table = report.campaign_table(cells, plan, floors).set_index("learner")
    finals = []
    for seed in (0, 1):  # the mean training return over the last 10% of the run's wall-clock, by hand
        metrics = pd.read_csv(tmp_path / "c" / "t" / plan.run_name("shac", "cartpole", seed) / "metrics.csv")
        last = metrics.loc[metrics["wall_clock"] >= 0.9 * metrics["wall_clock"].iloc[-1], "train_return"]
        finals.append(last.mean() if last.notna().any() else metrics["train_return"].dropna().iloc[-1])
    final = np.mean(finals)  # the last episode's return where none ended in the last 10%
    assert np.isfinite(final) and table.loc["shac", "train_return"] == pytest.approx(final, rel=1e-4)
    assert table.loc["shac", "normalised"] == pytest.approx((final - 900) / (1850 - 900), rel=1e-4)
    assert table.loc["shac", "seeds"] == "2 of 2" and table.loc["dva", "seeds"] == "0 of 2"
    assert np.isnan(table.loc["dva", "normalised"])
    fig = report.comparison_figure(cells, plan, floors)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["not yet run: dva"] and fig.axes[0].get_xlim()[1] >= 60  # the axis spans the budget

    only_shac = manifest.narrowed(plan, ["shac"])  # a figure of some learners names no other as missing
    assert only_shac.learners == ["shac"] and not report.comparison_figure(cells, only_shac, floors).axes[0].texts
    with pytest.raises(ValueError, match="campaign 't' has no learner drqv2"):
        manifest.narrowed(plan, ["shac", "drqv2"])
    fig = report.grad_norms_figure(cells, plan, smooth=3)  # Fig. 9: one line per seed, the rolling median
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and [t.get_text() for t in fig.axes[0].texts] == ["not yet run: dva"]
    norms = pd.read_csv(tmp_path / "c" / "t" / plan.run_name("shac", "cartpole", 0) / "metrics.csv")
    by_hand = [np.median(norms["actor_grad_norm"][max(0, k - 2) : k + 1]) for k in range(len(norms))]
    assert np.allclose(lines[0].get_ydata(), by_hand) and fig.axes[0].get_yscale() == "log"


# ---------------------------------------------------------------------------------------------- the manifest
def linked_images() -> set[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = set()
    for page in pages:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            found.add(str((page.parent / target).resolve().relative_to(ROOT)))
    return found


def test_the_manifest_covers_every_image_the_readme_and_docs_show_and_each_exists():
    """A manifest entry not drawn yet (its cells not shipped) is fine until a page shows it."""
    figures = manifest.load()
    assert linked_images() <= set(figures), linked_images() - set(figures)
    for out in linked_images():
        assert (ROOT / out).exists(), out


def test_every_link_of_the_readme_and_docs_resolves_to_a_file_and_its_heading():
    def slug(title: str) -> str:  # GitHub's anchors
        return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")

    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            headings = (
                re.findall(r"^#{1,6} (.*)$", dest.read_text(), flags=re.M)
                if dest.suffix == ".md" and dest.exists()
                else []
            )
            if not dest.exists() or (anchor and anchor not in {slug(h) for h in headings}):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_a_teacher_shipped_inside_its_student_is_not_a_seed_of_its_own_experiment(tmp_path):
    teacher = tiny_run(tmp_path / "results", 0, "teacher")
    student = tiny_run(tmp_path / "results", 1, "student")
    shutil.copytree(teacher, student / "teacher")  # as a published DAgger cell carries its teacher
    os.utime(student / "teacher" / "summary.json")  # written later than the original
    runs = report.collect(tmp_path / "results")
    assert sorted(map(str, runs["path"])) == sorted([str(student), str(teacher)])  # the original, once


def test_a_cell_of_an_older_learner_version_is_stale_run_again_and_replaced(tmp_path, monkeypatch, capsys):
    """A learner's version goes up: its shipped cell shows as stale, stays shipped until the new run is
    published in its place, and the figures leave it out meanwhile."""
    monkeypatch.setattr(campaigns, "film", lambda run: None)
    monkeypatch.setattr(campaigns, "publish", functools.partial(publish, allow_dirty=True))
    results, reference = tmp_path / "campaigns", tmp_path / "reference"
    plan = campaigns.Campaign(name="t", learners=["shac"], tasks=["cartpole"], seeds=[0], preset=None,
                              budget={"cartpole": "1h"}, overrides=TINY, executor="inline", parallel=1)  # fmt: skip
    args = Namespace(wait=False, parallel=1, time_min=10)
    assert campaigns.submit(plan, args, results, reference) == 1
    (shipped,) = campaigns.publish_finished(plan, results, reference)
    version = get_learner("shac").version
    assert json.loads((shipped / "summary.json").read_text())["learner_version"] == version

    monkeypatch.setattr(get_learner("shac"), "version", version + 1)
    (cell,) = campaigns.grid(plan, results, reference).itertuples()
    assert cell.state == "stale" and cell.detail == f"published by shac v{version} (the code's: v{version + 1})"
    assert report.collect(reference).empty and "older learner version left out" in capsys.readouterr().out
    assert [c[:3] for c in campaigns.to_submit(plan, results, reference)] == [("shac", "cartpole", 0)]
    assert (shipped / "summary.json").exists()  # kept until the new cell replaces it
    assert campaigns.submit(plan, args, results, reference) == 1
    assert plan.run_name("shac", "cartpole", 0).endswith(f"-v{version + 1}")  # the old run is never resumed
    assert campaigns.publish_finished(plan, results, reference) == [shipped]
    assert json.loads((shipped / "summary.json").read_text())["learner_version"] == version + 1
    assert campaigns.grid(plan, results, reference)["state"].tolist() == ["published"]


@pytest.mark.parametrize("status", ["interrupted", "complete"])
def test_a_run_of_another_learner_version_is_never_resumed_nor_taken_for_finished(tmp_path, status):
    out = tiny_run(tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "status": status, "learner_version": 1}))
    with pytest.raises(ConfigError, match="shac learner version 1, the code's is version"):
        run(load_config("shac", "cartpole", [*TINY, "seed=0", f"results_dir={tmp_path}", f"run_name={out.name}"]),
            progress=False)  # fmt: skip


def test_a_shipped_curve_that_unpacks_to_gigabytes_is_a_damaged_run_not_a_figure(tmp_path):
    """A 100 KB gzip of 80 MB: reading stops at 64 MB and names the file (a real curve is under 1 MB)."""
    with gzip.open(tmp_path / "curve.csv.gz", "wb") as packed:
        packed.write(b"iteration\n" + b"1\n" * (40 << 20))
    assert (tmp_path / "curve.csv.gz").stat().st_size < 1 << 20
    with pytest.raises(DamagedRun, match="unpacks to more than 64 MB"):
        load_metrics(tmp_path)
    with gzip.open(tmp_path / "curve.csv.gz", "wb") as packed:
        packed.write(b"iteration,train_return\n1,5.0\n2,7.5\n")
    assert load_metrics(tmp_path)["train_return"].tolist() == [5.0, 7.5]


def test_an_on_policy_cell_ships_its_policy_without_optimiser_states_and_it_loads_anywhere(tmp_path):
    """D.Va's shipped checkpoint holds the actor, encoder, critics and normaliser, not the optimisers'
    moments (a third of the size); the shipped cell alone restores the same actions."""
    cfg = load_config("dva", "cartpole", [*TINY, "image_size=24", f"results_dir={tmp_path / 'ran'}", "run_name=r"])
    out = run(cfg, progress=False)
    target = publish(out, tmp_path / "reference", allow_dirty=True, with_policy=True)
    (shipped,) = (target / "checkpoints").iterdir()
    (full,) = checkpoints(out)[-1:]
    policy = torch.load(shipped, weights_only=True)
    assert policy["policy_only"] and "actor_opt" not in policy["learner"] and "actor" in policy["learner"]
    assert shipped.stat().st_size < 0.5 * full.stat().st_size
    here, _, _ = restore_learner(out, torch.device("cpu"))
    there, _, _ = restore_learner(target, torch.device("cpu"))
    obs = torch.randint(0, 255, (2, *here.env.obs_shape), dtype=torch.uint8)
    torch.testing.assert_close(there.act(obs), here.act(obs), rtol=0, atol=0)


def test_a_runs_experiment_is_what_it_recorded_when_it_started_not_what_todays_configs_make_of_it(tmp_path):
    """The summary holds the run's defining settings from its start; publishing and the figures read
    them from there, so a default edited in configs/ afterwards renames nothing already run."""
    out = tiny_run(tmp_path / "results")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"] == ["horizon=8", "iterations=3", "num_envs=4"]
    assert summary["experiment"] == "horizon-8_iterations-3_num_envs-4"
    # what deriving the identity again would see differently (as after an edit of configs/): horizon=9
    config = (out / "config.yaml").read_text()
    (out / "config.yaml").write_text(config.replace("horizon: 8", "horizon: 9"))
    target = publish(out, tmp_path / "reference", allow_dirty=True)
    assert target.parent.name == "horizon-8_iterations-3_num_envs-4"
    assert set(report.collect(tmp_path / "reference")["learner"]) == {"shac [horizon=8, iterations=3, num_envs=4]"}
