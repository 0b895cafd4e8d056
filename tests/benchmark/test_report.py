"""``make plots`` from a small fixture of results: the figures hold the right lines, the tables the
fixture's aggregates, and what cannot be drawn is reported as missing."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from algorithms import get_learner
from benchmark.config import load_config
from benchmark.figures.report import collect, final_table, make_all, mean_ci, returns_figure
from benchmark.results import RunDir
from benchmark.run import run
from envs.tasks import registry

CURRENT = registry()["cartpole"].version  # the task version of the code; runs without a record are version 1

PHASE_TIMES = {"dva": (0.5, 0.1, 0.3, 0.1), "shac_diffrender": (0.2, 0.4, 1.2, 0.2)}
EVAL = {("dva", 0): 1500.0, ("dva", 1): 1700.0, ("dva", 2): 1800.0, ("shac_diffrender", 0): 900.0,
        ("shac_diffrender", 1): 700.0}  # fmt: skip


def fake_run(
    results,
    algo,
    seed,
    iterations=20,
    preset=None,
    budget=None,
    task_version=CURRENT,
    status="complete",
    learner_version=None,
    **settings,
):
    run = RunDir(results / f"{algo}-cartpole-seed{seed}" / f"{preset}-{budget}")
    run.path.mkdir(parents=True)
    overrides = [f"seed={seed}", f"results_dir={results}", f"run_name={run.path.name}"]
    overrides += [f"{k}={v}" for k, v in {"preset": preset, "budget": budget, **settings}.items() if v is not None]
    run.write_config(load_config(algo, "cartpole", overrides))
    forward, render, backward, update = PHASE_TIMES[algo]
    for i in range(1, iterations + 1):
        run.append_metrics({"iteration": i, "wall_clock": 6.0 * i, "env_steps": 512 * i,
                            "train_return": 100.0 * i + 10 * seed, "time_forward": forward, "time_render": render,
                            "time_backward": backward, "time_update": update, "peak_memory_mb": 800.0 + seed,
                            "actor_grad_norm": 10.0 * (1 + seed)})  # fmt: skip
    recorded = {} if task_version is None else {"task_version": task_version}  # None: written before the field
    learner = load_config(algo, "cartpole").learner
    recorded.update(learner=learner, learner_version=learner_version or get_learner(learner).version)
    evaluated = {"eval_return": EVAL[algo, seed]} if status == "complete" else {}
    run.write_summary({"status": status, "algo": algo, "task": "cartpole", "seed": seed, **recorded, **evaluated,
                       "peak_memory_mb": 800.0 + seed})  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    for algo, seed in EVAL:
        fake_run(results, algo, seed)
    fake_run(results, "dva", 0, iterations=5, preset="cpu", budget="3min")  # another experiment, not a 4th seed
    fake_run(results / "earlier", "dva", 1)  # seed 1 run again, earlier: one sample, the newest run counts
    summary = results / "earlier" / "dva-cartpole-seed1" / "None-None" / "summary.json"
    summary.write_text(summary.read_text().replace("1700.0", "0.0"))  # were it counted, the mean would drop
    os.utime(summary, (1, 1))
    (results / "reference").mkdir()
    pd.DataFrame({"task": "cartpole", "task_version": CURRENT, "policy": ["random", "zero"], "action_repeat": 1,
                  "episodes": 64, "mean": [930.0, 2118.0], "std": 1.0, "min": 0.0, "max": 0.0}).to_csv(
        results / "reference" / "floors.csv", index=False)  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:  # the figures read the shipped floors, never run the simulator
        patch.setattr("benchmark.floors.policy_returns", lambda *a, **k: pytest.fail("the simulator ran"))
        made, missing = make_all(results, results / "figures")
    return results, made, missing


def test_final_return_table_holds_the_fixture_aggregates(report):
    results, _, _ = report
    table = pd.read_csv(results / "figures" / "final_returns.csv").set_index("learner")
    assert table.loc["dva", "seeds"] == 3 and table.loc["dva", "eval_return"] == pytest.approx(5000 / 3)
    assert table.loc["shac_diffrender", "eval_return"] == pytest.approx(800.0)
    assert table.loc["dva", "eval_ci_low"] <= 5000 / 3 <= table.loc["dva", "eval_ci_high"]
    assert 1500 <= table.loc["dva", "eval_ci_low"] and table.loc["dva", "eval_ci_high"] <= 1800
    assert table.loc["dva", "published"] == "~1850"
    cpu = "dva [preset=cpu, budget=3min]"
    assert table.loc[cpu, "seeds"] == 1 and table.loc[cpu, "eval_return"] == 1500.0


def test_the_published_value_stands_beside_the_final_sampled_training_return(report):
    """Like with like: the paper's values are read off training curves, so the table's first return is
    the training return of each run's last 10% of wall-clock (iterations 18-20 of 20 here: 1800 + 100
    on average, plus 10 x seed), with the env steps and hours beside it; evaluations have their own
    columns."""
    results, _, _ = report
    table = pd.read_csv(results / "figures" / "final_returns.csv").set_index("learner")
    assert table.loc["dva", "train_return"] == pytest.approx(1900 + 10 * (0 + 1 + 2) / 3)
    assert table.loc["dva", "env_steps"] == 512 * 20 and table.loc["dva", "hours"] == pytest.approx(120 / 3600)
    columns = list(table.reset_index().columns)
    assert columns.index("published") == columns.index("train_ci_high") + 1 < columns.index("eval_return")
    assert "| cartpole | dva | 3 | 0 | 1910.0 |" in (results / "figures" / "final_returns.md").read_text()


def test_time_breakdown_and_backward_table(report):
    results, _, _ = report
    shares = pd.read_csv(results / "figures" / "time_breakdown.csv").set_index("learner")
    phases = ["forward simulation", "rendering", "backward", "network update", "other"]
    # 6 s of wall-clock per iteration, of which the phases time 1 s (dva) and 2 s (shac_diffrender)
    assert shares.loc["dva", phases].tolist() == pytest.approx([0.5 / 6, 0.1 / 6, 0.3 / 6, 0.1 / 6, 5 / 6])
    assert shares.loc["shac_diffrender", "backward"] == pytest.approx(1.2 / 6)
    table1 = pd.read_csv(results / "figures" / "table1_backward.csv").set_index("learner")
    assert table1.loc["dva", "backward_s"] == pytest.approx(0.3)
    assert table1.loc["shac_diffrender", "backward_s"] == pytest.approx(1.2)
    assert table1.loc["dva", "peak_memory_mb"] == pytest.approx(801.0)


def test_return_curves_have_one_line_per_learner_with_the_seed_mean(report):
    results, made, _ = report
    fig = returns_figure(collect(results), "cartpole")
    wall, steps = fig.axes
    lines = {line.get_label(): line for line in wall.get_lines()}
    assert set(lines) == {"dva (3 seeds)", "dva [preset=cpu, budget=3min] (1 seed)", "shac_diffrender (2 seeds)"}
    assert wall.get_xlabel() == "wall-clock (min)" and steps.get_xlabel() == "env steps"
    x, y = lines["dva (3 seeds)"].get_data()
    assert x[-1] == pytest.approx(2.0)  # 20 iterations x 6 s
    # smoothed (10-iteration mean) final return per seed: 100 * 15.5 + 10 * seed; mean over seeds 0..2
    assert y[-1] == pytest.approx(1550 + 10, rel=1e-6)
    assert np.isfinite(y).all()
    for name in ("returns_cartpole", "time_breakdown", "fig10_memory", "fig9_grad_norms_cartpole"):
        assert f"{name}.png" in made and f"{name}.pdf" in made
        assert (results / "figures" / f"{name}.pdf").stat().st_size > 1000


def test_missing_figures_are_reported_with_the_command_that_makes_them(report):
    _, made, missing = report
    assert any(m.startswith("Fig. 3") and "make apg-vs-dpg" in m for m in missing)
    assert any(m.startswith("Fig. 13") and "NAME=fig13" in m for m in missing)
    assert not any(name.startswith("fig13") for name in made)


def test_runs_of_another_task_version_are_never_pooled(tmp_path, capsys):
    assert CURRENT > 1
    fake_run(tmp_path / "v1", "dva", 0, iterations=10, task_version=None)  # same learner, task and seed
    summary = tmp_path / "v1" / "dva-cartpole-seed0" / "None-None" / "summary.json"
    summary.write_text(summary.read_text().replace("1500.0", "300.0"))
    os.utime(summary, (2e9, 2e9))  # the newer run: were versions one experiment, it would replace the v2 run
    fake_run(tmp_path / "v2", "dva", 0)
    runs = collect(tmp_path).set_index("learner")
    assert sorted(runs.index) == ["dva", "dva [task v1]"]
    assert runs.loc["dva", "task_version"] == CURRENT and runs.loc["dva [task v1]", "task_version"] == 1
    assert "1 run(s) of cartpole are on task version 1" in capsys.readouterr().out

    lines = {line.get_label(): line for line in returns_figure(collect(tmp_path), "cartpole").axes[0].get_lines()}
    assert set(lines) == {"dva (1 seed)", "dva [task v1] (1 seed)"}
    assert lines["dva (1 seed)"].get_xdata()[-1] == pytest.approx(2.0)  # 20 iterations x 6 s: the v2 run alone
    assert lines["dva [task v1] (1 seed)"].get_xdata()[-1] == pytest.approx(1.0)

    table = final_table(collect(tmp_path)).set_index("learner")
    assert table.loc["dva", "eval_return"] == 1500.0 and table.loc["dva", "published"] == "~1850"
    assert (
        table.loc["dva [task v1]", "eval_return"] == 300.0 and table.loc["dva [task v1]", "published"] == "n/a: task v1"
    )


def test_old_runs_alone_are_not_taken_for_the_papers_tasks(tmp_path):
    fake_run(tmp_path, "dva", 0, task_version=None)
    table = final_table(collect(tmp_path))
    assert table["learner"].tolist() == ["dva [task v1]"] and table["published"].tolist() == ["n/a: task v1"]


def test_experiments_are_told_apart_by_the_whole_config_and_diverged_seeds_count(tmp_path):
    """Seeds pool only when everything but the seed, the paths and the resumable keys agree; a second run
    of one seed with another contact law is another experiment; a diverged seed is counted, not dropped."""
    fake_run(tmp_path / "a", "dva", 0, torch_threads=1)
    fake_run(tmp_path / "b", "dva", 1, torch_threads=2)  # a resumable key: still the same experiment
    fake_run(tmp_path / "c", "dva", 2, status="diverged")
    fake_run(tmp_path / "d", "dva", 0, contact_law="newton")  # seed 0 again, other physics
    fake_run(tmp_path / "e", "dva", 1, actor_lr=0.5)
    runs = collect(tmp_path)
    assert sorted(runs["learner"].unique()) == ["dva", "dva [actor_lr=0.5]", "dva [contact_law=newton]"]
    table = final_table(runs).set_index("learner")
    assert table.loc["dva", ["seeds", "diverged"]].tolist() == [3, 1]
    assert table.loc["dva", "eval_return"] == pytest.approx(1600.0)  # the evaluated seeds 0 and 1
    assert table.loc["dva [contact_law=newton]", "seeds"] == 1 and table.loc["dva [actor_lr=0.5]", "seeds"] == 1


def test_the_seed_interval_is_the_percentile_bootstrap_computed_by_hand():
    """Four seeds have 4^4 equally likely resamples: their means' 2.5% and 97.5% quantiles are the exact
    percentile interval, (0.5, 7.75) here; a normal-theory interval would be (-0.33, 7.33)."""
    values = np.array([0.0, 1.0, 3.0, 10.0])
    means = [np.mean(resample) for resample in itertools.product(values, repeat=4)]
    low, high = np.quantile(means, [0.025, 0.975], method="inverted_cdf")
    assert (low, high) == (0.5, 7.75)
    for seed in range(3):
        assert mean_ci(values, seed=seed) == pytest.approx((3.5, low, high))


def test_the_shipped_floors_are_drawn_at_the_runs_action_repeat_and_a_task_without_them_is_named(report, tmp_path):
    results, _, missing = report
    floors = pd.read_csv(results / "figures" / "floors.csv")
    assert floors[["task", "action_repeat", "random_return", "zero_return"]].values.tolist() == [
        ["cartpole", 1, 930.0, 2118.0]
    ]
    fig = returns_figure(collect(results), "cartpole", floors=floors)
    drawn = {line.get_label(): line.get_ydata()[0] for line in fig.axes[0].get_lines()}
    assert drawn["random policy (action repeat 1)"] == 930.0 and drawn["zero action (action repeat 1)"] == 2118.0
    assert not any("floors of" in item for item in missing)
    fake_run(tmp_path, "dva", 0)  # no floors shipped beside these runs: drawn without, and said how to get them
    _, lacking = make_all(tmp_path, tmp_path / "figures")
    assert "floors of cartpole (drawn without them): make floors TASKS=cartpole" in lacking


def test_a_students_teacher_is_drawn_before_it_and_tabled_beside_it_never_counted_as_a_seed(tmp_path):
    student = RunDir(tmp_path / "dagger-cartpole-seed0")
    teacher = RunDir(student.path / "teacher")
    for folder, algo, extra in ((teacher, "shac", []), (student, "dagger", ["teacher_overrides=[iterations=5]"])):
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_config(load_config(algo, "cartpole", [f"results_dir={tmp_path}", *extra]))
    for i in range(1, 6):  # the teacher's 5 minutes, then the student's, on one clock
        teacher.append_metrics({"iteration": i, "wall_clock": 60.0 * i, "env_steps": 100 * i, "train_return": 2000.0})
        student.append_metrics({"iteration": i, "wall_clock": 300 + 60.0 * i, "env_steps": 500 + 100 * i,
                                "train_return": 1000.0})  # fmt: skip
    teacher.write_summary({"status": "complete", "algo": "shac", "task": "cartpole", "seed": 0, "role": "teacher",
                           "task_version": CURRENT, "learner_version": get_learner("shac").version,
                           "eval_return": 2200.0})  # fmt: skip
    student.write_summary({"status": "complete", "algo": "dagger", "task": "cartpole", "seed": 0,
                           "task_version": CURRENT, "learner_version": get_learner("dagger").version,
                           "eval_return": 1400.0, "teacher_run": str(teacher.path),
                           "teacher_eval_return": 2200.0})  # fmt: skip
    runs = collect(tmp_path)
    assert runs["learner"].tolist() == ["dagger [teacher_overrides=['iterations=5']]"]
    table = final_table(runs)
    assert table[["eval_return", "teacher", "published"]].values.tolist() == [[1400.0, 2200.0, "~1400"]]
    fig = returns_figure(runs, "cartpole")
    by_time = {line.get_label(): line.get_xydata() for line in fig.axes[0].get_lines()}
    drawn = by_time["dagger [teacher_overrides=['iterations=5']]: its state teacher"]
    assert drawn[0, 0] == 0 and drawn[-1].tolist() == [5.0, 2000.0]  # ends at 5 min, where the student starts
    assert by_time["dagger [teacher_overrides=['iterations=5']] (1 seed)"][0].tolist() == [6.0, 1000.0]


def test_runs_of_an_older_learner_version_are_left_out_of_every_figure_and_said_so(tmp_path, capsys):
    fake_run(tmp_path / "old", "dva", 0, learner_version=get_learner("shac").version - 1)
    fake_run(tmp_path / "new", "dva", 1)
    runs = collect(tmp_path)
    assert runs["seed"].tolist() == [1]
    out = capsys.readouterr().out
    assert "1 run(s) of an older learner version left out" in out and "1 dva by shac v1 (the code's: v" in out


def test_a_student_whose_teacher_ran_an_older_learner_is_left_out_too(tmp_path, capsys):
    student = RunDir(tmp_path / "dagger-cartpole-seed0")
    teacher = RunDir(student.path / "teacher")
    for folder, algo in ((teacher, "shac"), (student, "dagger")):
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_config(load_config(algo, "cartpole", [f"results_dir={tmp_path}"]))
        folder.append_metrics({"iteration": 1, "wall_clock": 60.0, "env_steps": 100, "train_return": 1000.0})
    teacher.write_summary(
        {
            "status": "complete",
            "algo": "shac",
            "task": "cartpole",
            "seed": 0,
            "role": "teacher",
            "task_version": CURRENT,
        }
    )  # fmt: skip  (no learner_version: recorded before it, v1)
    student.write_summary({"status": "complete", "algo": "dagger", "task": "cartpole", "seed": 0,
                           "task_version": CURRENT, "learner_version": get_learner("dagger").version,
                           "teacher_run": "teacher"})  # fmt: skip
    assert collect(tmp_path).empty
    assert "1 dagger by shac v1 (the code's: v" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- real runs, damaged ones
SMALL = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "eval_max_steps=20", "checkpoint_every=5"]


def small(tmp_path, *extra):
    return load_config("shac", "cartpole", [*SMALL, f"results_dir={tmp_path}", "run_name=r", *extra])


def test_plots_survive_a_damaged_run_and_refuse_a_directory_as_out(tmp_path, capsys):
    from benchmark.figures.report import collect

    good = run(small(tmp_path, "iterations=2"), progress=False)
    for name, damage in (("bad-summary", "summary.json"), ("header-only", "metrics.csv")):
        bad = tmp_path / name
        bad.mkdir()
        for file in ("config.yaml", "summary.json", "metrics.csv"):
            (bad / file).write_bytes((good / file).read_bytes())
        (bad / damage).write_text(
            "{" if damage == "summary.json" else (good / "metrics.csv").read_text().splitlines()[0] + "\n"
        )
    runs = collect(tmp_path)
    assert [p.name for p in runs["path"]] == ["r"]
    out = capsys.readouterr().out
    assert "bad-summary left out" in out and "header-only left out" in out
    argv = [sys.executable, "-m", "benchmark.figures.plots", "curves", str(good), "--out", str(tmp_path)]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert (
        result.returncode == 2
        and "give an image file" in result.stderr
        and not (tmp_path.parent / f"{tmp_path.name}.png").exists()
    )
