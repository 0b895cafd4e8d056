"""Trust: nothing in a results folder or a sweep argument runs code, no run clobbers another, damaged
files resume or are refused in one line, SIGTERM leaves a resumable run, and the same seed gives the
same numbers."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pandas as pd
import pytest
import torch

from benchmark import config as config_module
from benchmark import results as results_module
from benchmark import sweep
from benchmark.config import ConfigError, load_config
from benchmark.results import checkpoints
from benchmark.run import hold_run_dir, main, run
from envs.tasks.cartpole import Cartpole

SMALL = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "eval_max_steps=20", "checkpoint_every=5"]
TIMING = {"wall_clock", "peak_memory_mb", "iteration_memory_mb"}  # measured, not computed: differ between any two runs


class Planted:
    """Unpickling this runs a command: what an attacker would put in a results folder."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def small(tmp_path, *extra):
    return load_config("shac", "cartpole", [*SMALL, f"results_dir={tmp_path}", "run_name=r", *extra])


def numbers(run_dir) -> pd.DataFrame:
    metrics = pd.read_csv(run_dir / "metrics.csv")
    return metrics.drop(columns=[c for c in metrics if c in TIMING or c.startswith("time_")])


# ---------------------------------------------------------------------------------------------- code from files
def test_a_planted_checkpoint_is_never_unpickled(tmp_path, capsys):
    out = run(small(tmp_path, "iterations=5"), progress=False)
    (out / "summary.json").write_text(
        json.dumps({**json.loads((out / "summary.json").read_text()), "status": "interrupted"})
    )
    marker = tmp_path / "pwned"
    torch.save({"learner": Planted(marker), "runner": {}}, out / "checkpoints" / "iter-000009.pt")
    run(small(tmp_path, "iterations=6"), progress=False)
    assert not marker.exists()
    assert "iter-000009.pt is corrupt or does not fit" in capsys.readouterr().err
    assert (out / "checkpoints" / "iter-000009.corrupt").exists()


def test_a_planted_result_file_is_never_unpickled_by_sweep_status(tmp_path):
    root = tmp_path / "s"
    (root / ".sweep" / "logs").mkdir(parents=True)
    record = {"run": "shac-cartpole-seed0", "algo": "shac", "task": "cartpole", "seed": "0", "executor": "local",
              "job_id": "999999", "submitted": "2026-01-01T00:00:00", "logs": str(root)}  # fmt: skip
    pd.DataFrame([record]).to_csv(root / ".sweep" / "jobs.csv", index=False)
    marker = tmp_path / "pwned"
    result = sweep.JobPaths(root / ".sweep" / "logs", job_id="999999", task_id=0).result_pickle
    result.write_bytes(__import__("pickle").dumps(("success", Planted(marker))))
    table = sweep.status_table(root)
    assert not marker.exists() and table["state"].tolist() == ["failed"]  # returned, but no finished summary


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--algos", "shac", "--tasks", "cartpole", "--executor", "inline", "budget=1min\nrm -rf ~"],
         "holds a control character"),
        (["run", "--algos", "shac", "--tasks", "cartpole", "--executor", "slurm", "--partition", "gpu\n#SBATCH --x"],
         "holds a control character"),
        (["run", "--algos", "shac", "--tasks", "cartpole", "--executor", "slurm", "--partition", "gpu;reboot"],
         "give a SLURM partition name"),
        (["run", "--algos", "shac", "--tasks", "cartpole", "--name", "../elsewhere"], "not one plain path component"),
    ],
)  # fmt: skip
def test_injected_script_lines_and_paths_are_refused(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        sweep.main([*argv, "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "lines, message",
    [
        (["garbage"], "columns"),
        ([",".join(sweep.RECORD_FIELDS), "r,shac,cartpole,0,local,-1,2026-01-01T00:00:00,/x"], "job '-1'"),
        ([",".join(sweep.RECORD_FIELDS), "r,shac,cartpole,0,local,0,2026-01-01T00:00:00,/x"], "job '0'"),
        ([",".join(sweep.RECORD_FIELDS), "../r,shac,cartpole,0,slurm,12,2026-01-01T00:00:00,/x"], "run '../r'"),
    ],
)
def test_a_damaged_job_record_is_one_line(tmp_path, lines, message):
    (tmp_path / ".sweep").mkdir()
    (tmp_path / ".sweep" / "jobs.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="is damaged") as error:
        sweep.read_records(tmp_path)
    assert message in str(error.value)


def test_no_process_group_reads_as_a_running_local_job(tmp_path):
    for pid in ("0", "-1"):
        record = pd.Series({"executor": "local", "job_id": pid, "logs": str(tmp_path), "run_status": "missing"})
        assert sweep.job_state(record) == "failed"


def test_a_slurm_job_unknown_to_sacct_is_pending_only_while_accounting_may_lag(tmp_path):
    now = datetime.now()
    record = pd.Series({"executor": "slurm", "job_id": "41", "logs": str(tmp_path), "run_status": "missing",
                        "submitted": now.isoformat(timespec="seconds")})  # fmt: skip
    assert sweep.job_state(record, {}) == "pending"
    record["submitted"] = (now - timedelta(hours=1)).isoformat(timespec="seconds")
    assert sweep.job_state(record, {}) == "failed"  # lost: the next `make sweep` submits it again


# ---------------------------------------------------------------------------------------------- one run, one owner
def test_a_second_start_of_a_run_in_use_is_refused(tmp_path, capsys):
    with hold_run_dir(tmp_path / "r"):
        with pytest.raises(SystemExit) as stop:
            main(["shac", "cartpole", *SMALL, f"results_dir={tmp_path}", "run_name=r", "iterations=2", "--no-progress"])
        assert list((tmp_path / "r").iterdir()) == []  # the holder's directory untouched
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"is in use by process {os.getpid()}" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, "SIGTERM early"])
def test_a_signal_that_ends_the_process_leaves_an_interrupted_run_that_resumes(tmp_path, signum):
    """Every catchable signal whose default ends a process (what SLURM, ``kill``, a closed terminal or
    Ctrl-\\ send) ends the run as interrupted, also the instant its summary appears."""
    early = signum == "SIGTERM early"
    signum = signal.SIGTERM if early else signum
    args = [*SMALL, f"results_dir={tmp_path}", "run_name=r", "iterations=400", "keep_checkpoints=0"]
    process = subprocess.Popen([sys.executable, "-m", "benchmark.run", "shac", "cartpole", *args, "--no-progress"],
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 300
    while not ((tmp_path / "r" / "summary.json").exists() if early else checkpoints(tmp_path / "r")):
        assert process.poll() is None and time.time() < deadline, process.stderr.read() if process.poll() else "slow"
        time.sleep(0.001 if early else 0.2)
    process.send_signal(signum)
    assert process.wait(timeout=120) == 128 + signum
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["error"] == f"Terminated: {signal.Signals(signum).name}"
    if early or signum != signal.SIGTERM:  # resuming is the same whatever the signal
        return
    resumed = json.loads(
        (run(small(tmp_path, "iterations=12", "keep_checkpoints=0"), progress=False) / "summary.json").read_text()
    )
    assert resumed["status"] == "complete" and resumed["resumed"] == 1


# ---------------------------------------------------------------------------------------------- damaged files
def _damage(path, how: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    damaged = {
        "header": ["it,when\n", *lines[1:]],
        "gap": [*lines[:3], *lines[5:]],  # iterations 3 and 4 deleted
        "not an integer": [*lines[:3], "three" + lines[3][1:], *lines[4:]],
        "empty": [],
        "nul": [lines[0], "\0" * 40 + "\n", *lines[1:]],
    }[how]
    path.write_text("".join(damaged))


@pytest.mark.parametrize(
    "how, kept, message",
    [("header", 0, "not our header"), ("gap", 2, "iteration 5 follows iteration 2"),
     ("not an integer", 2, "row 4 has no integer iteration"), ("empty", 0, "empty"), ("nul", 0, "NUL bytes")],
)  # fmt: skip
def test_a_damaged_metrics_file_is_set_aside_in_one_line_and_the_run_resumes(tmp_path, capsys, how, kept, message):
    out = run(small(tmp_path, "iterations=10", "keep_checkpoints=0"), progress=False)
    (out / "summary.json").write_text(
        json.dumps({**json.loads((out / "summary.json").read_text()), "status": "interrupted"})
    )
    original = pd.read_csv(out / "metrics.csv")
    _damage(out / "metrics.csv", how)
    run(small(tmp_path, "iterations=12", "keep_checkpoints=0"), progress=False)
    warning = [line for line in capsys.readouterr().err.splitlines() if "is damaged" in line]
    assert len(warning) == 1 and message in warning[0] and "metrics.damaged-1.csv" in warning[0]
    assert (out / "metrics.damaged-1.csv").exists()
    after = pd.read_csv(out / "metrics.csv")
    assert after["iteration"].tolist() == list(range(1, kept + 1)) + list(range(11, 13))
    pd.testing.assert_frame_equal(after.iloc[:kept], original.iloc[:kept])


def test_a_checkpoint_of_another_learner_falls_back_to_the_previous_one(tmp_path, capsys):
    out = run(small(tmp_path, "iterations=10", "keep_checkpoints=0"), progress=False)
    (out / "summary.json").write_text(
        json.dumps({**json.loads((out / "summary.json").read_text()), "status": "interrupted"})
    )
    newest = torch.load(out / "checkpoints" / "iter-000010.pt", weights_only=True)
    newest["learner"]["actor"] = {"not": torch.zeros(3)}  # unpickles fine, fits no actor
    torch.save(newest, out / "checkpoints" / "iter-000010.pt")
    resumed = json.loads(
        (run(small(tmp_path, "iterations=11", "keep_checkpoints=0"), progress=False) / "summary.json").read_text()
    )
    assert "iter-000010.pt is corrupt or does not fit" in capsys.readouterr().err
    assert resumed["status"] == "complete" and pd.read_csv(out / "metrics.csv")["iteration"].tolist() == list(
        range(1, 12)
    )


TORCH_FULL_DISK = (
    "[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/0: file write failed"
)


@pytest.mark.parametrize("where", ["checkpoint", "metrics row"])
def test_a_full_disk_is_one_line_loses_nothing_and_the_run_resumes(tmp_path, capsys, monkeypatch, where):
    out = run(small(tmp_path, "iterations=5"), progress=False)  # a checkpoint at 5, then "stopped" there
    (out / "summary.json").write_text(
        json.dumps({**json.loads((out / "summary.json").read_text()), "status": "interrupted"})
    )
    kept = (out / "checkpoints" / "iter-000005.pt").read_bytes()
    if where == "checkpoint":  # what torch.save raises on a full disk, instead of an OSError
        monkeypatch.setattr(
            results_module.torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError(TORCH_FULL_DISK))
        )
    else:
        monkeypatch.setattr(results_module.os, "write", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    argv = ["shac", "cartpole", *SMALL, f"results_dir={tmp_path}", "run_name=r", "iterations=10", "--no-progress"]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("error: no space left to write ") and "the same command resumes" in err[0]
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert (out / "checkpoints" / "iter-000005.pt").read_bytes() == kept  # nothing already written is lost
    assert not [p.name for p in out.rglob(".*")]  # no half-written temporary files left behind
    monkeypatch.undo()  # space freed
    main(argv)
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"
    assert pd.read_csv(out / "metrics.csv")["iteration"].tolist() == list(range(1, 11))


# ---------------------------------------------------------------------------------------------- bad input, one line
def test_an_unwritable_results_dir_is_one_line_before_anything_is_built(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")  # a directory inside a file cannot be made, not even by root
    with pytest.raises(SystemExit) as stop:
        main(["shac", "cartpole", *SMALL, f"results_dir={tmp_path / 'a-file' / 'results'}", "--no-progress"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "choose a writable results_dir" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "files, message",
    [
        ({"a/defaults.yaml": "inherit: b\n", "b/defaults.yaml": "inherit: a\n"}, "closes a cycle (a -> b -> a)"),
        ({"a/defaults.yaml": "inherit: nowhere\n"}, "no configs/<algo>/defaults.yaml of that name"),
        ({"a/defaults.yaml": "learner: shac\n", "a/cartpole.yaml": "num_envs: [1\n"}, "not valid YAML"),
        ({"a/defaults.yaml": "- 1\n- 2\n"}, "holds a ListConfig, not key: value pairs"),
        ({"a/defaults.yaml": "learner: shac\n", "a/cartpole.yaml": "inherit: a\n"}, "inherit belongs in"),
    ],
)
def test_broken_config_files_are_one_line(tmp_path, monkeypatch, files, message):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(config_module, "CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError) as error:
        load_config("a", "cartpole")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_finished_run_asked_for_more_says_it_was_not_extended(tmp_path, capsys):
    run(small(tmp_path, "iterations=3"), progress=False)
    run(small(tmp_path, "iterations=5"), progress=False)
    assert "already complete at 3 iterations; nothing was run" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize(
    "algo, overrides",
    [
        ("shac", [*SMALL, "iterations=6"]),
        ("drqv2", ["preset=cpu", "num_envs=2", "image_size=32", "seed_frames=8", "batch_size=8", "buffer_size=2000",
                   "hidden_dim=32", "iterations=8", "eval_envs=2", "eval_max_steps=20"]),
    ],
)  # fmt: skip
def test_the_same_seed_gives_the_same_numbers(tmp_path, algo, overrides, monkeypatch):
    """On a CPU, the same config, seed and thread count give identical metrics (every column but the
    measured times and memory) and the same evaluation. DrQ-v2 samples finished episodes only: short
    ones here (4 agent steps), so its updates begin within the 8 iterations."""
    if algo == "drqv2":
        monkeypatch.setattr(Cartpole, "episode_length", 8)
    runs = [run(load_config(algo, "cartpole", [*overrides, "seed=3", "torch_threads=1", f"results_dir={tmp_path}",
                                               f"run_name=r{k}"]), progress=False) for k in (1, 2)]  # fmt: skip
    pd.testing.assert_frame_equal(numbers(runs[0]), numbers(runs[1]))
    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    assert summaries[0]["eval_return"] == summaries[1]["eval_return"]
    other = run(load_config(algo, "cartpole", [*overrides, "seed=4", "torch_threads=1", f"results_dir={tmp_path}",
                                               "run_name=other"]), progress=False)  # fmt: skip
    assert not numbers(other).equals(numbers(runs[0]))  # the seed decides, not a constant


# ---------------------------------------------------------------------------------------------- the env API
def test_the_env_takes_numpy_and_float64_actions_and_refuses_wrong_shapes_in_one_line():
    import numpy as np

    from envs import DiffEnv
    from envs.gym_adapter import GymVectorEnv

    for count in (0, -1):
        with pytest.raises(ValueError, match=f"num_envs={count}: give a positive whole number"):
            DiffEnv("cartpole", count, device="cpu")
    env = DiffEnv("cartpole", 2, device="cpu", differentiable=False)
    rewards = []
    for actions in (np.full((2, 1), 0.5), torch.full((2, 1), 0.5, dtype=torch.float64), torch.full((2, 1), 0.5)):
        env.reset(seed=0)
        rewards.append(env.step(actions)[1])
    torch.testing.assert_close(rewards[0], rewards[2])
    torch.testing.assert_close(rewards[1], rewards[2])
    for bad in (torch.zeros(3, 1), torch.zeros(2)):
        with pytest.raises(ValueError, match=r"this env takes \(2, 1\) \(num_envs, act_dim\)"):
            env.step(bad)
    with pytest.raises(ValueError, match=r"give a whole number in \[0, 2\*\*63\)"):
        env.reset(seed=2**70)
    assert (
        GymVectorEnv("cartpole", 2, device="cpu", autoreset_mode="same_step").metadata["autoreset_mode"].value
        == "SameStep"
    )
    with pytest.raises(ValueError, match="choose next_step or same_step"):
        GymVectorEnv("cartpole", 2, device="cpu", autoreset_mode="sometimes")


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


def test_a_run_killed_mid_write_resumes_without_the_torn_file_and_a_moved_run_resumes_where_it_lies(tmp_path):
    """SIGKILL during ``torch.save`` leaves ``checkpoints/.iter-*.pt.<random>``: the next start (holding the
    run's lock, so nobody is writing) deletes it. A run folder moved elsewhere resumes from there."""
    first = run(small(tmp_path / "a", "iterations=10", "checkpoint_every=5"), progress=False)
    summary = json.loads((first / "summary.json").read_text())
    (first / "summary.json").write_text(json.dumps({**summary, "status": "running"}))  # as SIGKILL leaves it
    torn = first / "checkpoints" / ".iter-000015.pt.k3x9q"
    torn.write_bytes(b"\0" * 1024)
    moved = tmp_path / "b" / "r"
    moved.parent.mkdir()
    first.rename(moved)
    resumed = json.loads((run(small(tmp_path / "b", "iterations=15"), progress=False) / "summary.json").read_text())
    assert resumed["status"] == "complete" and resumed["iterations"] == 15 and resumed["resumed"] == 1
    assert not (moved / "checkpoints" / torn.name).exists()
