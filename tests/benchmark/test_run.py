"""The runner, benchmark/run.py: a run killed or signalled resumes from its last good checkpoint, one
process owns a run, damaged files are set aside or refused in one line, a full disk loses nothing, and
the same seed gives the same numbers."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from algorithms.shac import SHAC
from benchmark import config as config_module
from benchmark import results as results_module
from benchmark.config import ConfigError, load_config
from benchmark.results import checkpoints, latest_checkpoint, load_metrics
from benchmark.run import hold_run_dir, main, run
from envs import get_task
from envs.tasks.cartpole import Cartpole

SMALL = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "eval_max_steps=20", "checkpoint_every=5"]
TIMING = {"wall_clock", "peak_memory_mb", "iteration_memory_mb"}  # measured, not computed: differ between any two runs
# a small run that keeps every checkpoint
KEEP_ALL = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "checkpoint_every=5", "keep_checkpoints=0"]
# the summary of a run killed while it trained: the runner writes the versions it runs before anything else
KILLED = {"status": "running", "task_version": get_task("cartpole").version, "learner_version": SHAC.version}


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


def small_config(tmp_path, *extra):
    return load_config("shac", "cartpole", [*KEEP_ALL, f"results_dir={tmp_path}", "run_name=r", *extra])


class FakeClock:
    """``time`` for ``benchmark.run`` whose ``perf_counter`` advances 1 s per reading: each iteration (read
    at its start and end) takes exactly 1 s, so wall-clock sums can be checked exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


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


# ---------------------------------------------------------------------------------------------- one run, one owner
def test_a_second_start_of_a_run_in_use_is_refused(tmp_path, capsys):
    with hold_run_dir(tmp_path / "r"):
        with pytest.raises(SystemExit) as stop:
            main(["shac", "cartpole", *SMALL, f"results_dir={tmp_path}", "run_name=r", "iterations=2", "--no-progress"])
        assert list((tmp_path / "r").iterdir()) == []  # the holder's directory untouched
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"is in use by process {os.getpid()}" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------- killed, signalled or moved
def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    args = [*KEEP_ALL, f"results_dir={tmp_path}", "run_name=r", "iterations=40"]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmark.run", "shac", "cartpole", *args, "--no-progress"], stderr=stderr
        )
    metrics = tmp_path / "r" / "metrics.csv"
    deadline = time.time() + 300
    while not metrics.exists() or len(metrics.read_text().splitlines()) < 18:
        if process.poll() is not None:  # died or finished early: say why at once
            pytest.fail(f"the run exited with {process.returncode}:\n{(tmp_path / 'stderr.txt').read_text()[-2000:]}")
        assert time.time() < deadline, "no 17 iterations within 300 s"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = pd.read_csv(metrics)
    last = int(checkpoints(tmp_path / "r")[-1].stem.split("-")[1])
    assert 15 <= last < len(before) < 40  # killed between two checkpoints
    at_checkpoint = latest_checkpoint(tmp_path / "r")["runner"]["wall_clock"]

    monkeypatch.setattr("benchmark.run.time", FakeClock())
    out = run(small_config(tmp_path, "iterations=40"), progress=False)
    after = pd.read_csv(out / "metrics.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["resumed"] == 1 and summary["iterations"] == 40
    assert after["iteration"].tolist() == list(range(1, 41))  # no duplicated or missing rows
    assert after["env_steps"].tolist() == [i * 8 * 4 for i in range(1, 41)]
    pd.testing.assert_frame_equal(after.iloc[:last], before.iloc[:last])  # rows up to the checkpoint kept
    # the clock goes on from the checkpoint's, plus 1 s per redone or new iteration: the work lost with the
    # killed process (iterations after the checkpoint) is neither counted nor counted twice
    expected = at_checkpoint + np.arange(1, 41 - last)
    np.testing.assert_allclose(after["wall_clock"].iloc[last:], expected)
    assert summary["wall_clock"] == pytest.approx(at_checkpoint + 40 - last)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, "SIGTERM early"])
def test_a_signal_that_ends_the_process_leaves_an_interrupted_run_that_resumes(tmp_path, signum):
    """Every catchable signal whose default ends a process (what SLURM, ``kill``, a closed terminal or
    Ctrl-\\ send) ends the run as interrupted, also the instant its summary appears."""
    early = signum == "SIGTERM early"
    signum = signal.SIGTERM if early else signum
    args = [*SMALL, f"results_dir={tmp_path}", "run_name=r", "iterations=400", "keep_checkpoints=0"]
    defaults = lambda: signal.signal(signum, signal.SIG_DFL)  # noqa: E731 (under nohup or `&` a shell ignores some)
    process = subprocess.Popen([sys.executable, "-m", "benchmark.run", "shac", "cartpole", *args, "--no-progress"],
                               stderr=subprocess.PIPE, text=True, preexec_fn=defaults)  # fmt: skip
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


def test_an_unreadable_checkpoint_is_retried_not_renamed(tmp_path, monkeypatch):
    """An I/O error (a network filesystem's hiccup) is not a corrupt file: retried; if it persists, the
    run stops with one line and nothing in the run directory changes."""
    out = run(small_config(tmp_path, "iterations=10"), progress=False)
    (out / "summary.json").write_text(json.dumps(KILLED))
    monkeypatch.setattr("benchmark.results.time.sleep", lambda s: None)
    load, failures = torch.load, []

    def flaky(path, *args, **kwargs):
        if len(failures) < 2:
            failures.append(path)
            raise OSError(5, "Input/output error")
        return load(path, *args, **kwargs)

    monkeypatch.setattr("benchmark.results.torch.load", flaky)
    assert latest_checkpoint(out)["runner"]["iteration"] == 10 and len(failures) == 2
    monkeypatch.setattr("benchmark.results.torch.load", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "EIO")))
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"cannot read checkpoint .*iter-000010.pt .* after 3 tries"):
        run(small_config(tmp_path, "iterations=20"), progress=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files  # nothing renamed or rewritten


def test_a_torn_last_metrics_row_is_dropped_by_readers_and_on_resume(tmp_path):
    out = run(small_config(tmp_path, "iterations=7"), progress=False)
    (out / "summary.json").write_text(json.dumps(KILLED))
    whole = (out / "metrics.csv").read_text()
    (out / "metrics.csv").write_text(whole + "8,3.1")  # the machine died while writing row 8
    assert load_metrics(out)["iteration"].tolist() == list(range(1, 8))
    run(small_config(tmp_path, "iterations=12"), progress=False)
    assert load_metrics(out)["iteration"].tolist() == list(range(1, 13))


def test_a_corrupt_checkpoint_is_reported_and_the_previous_one_used(tmp_path, capsys):
    out = run(small_config(tmp_path, "iterations=10"), progress=False)
    newest = checkpoints(out)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, e.g. by a full disk
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "status": "running"}))  # as if killed

    run(small_config(tmp_path, "iterations=10"), progress=False)
    assert "iter-000010.pt is corrupt or does not fit" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["resumed"] == 1
    assert pd.read_csv(out / "metrics.csv")["iteration"].tolist() == list(range(1, 11))
    assert (out / "checkpoints" / "iter-000010.corrupt").exists()  # kept for inspection
    assert latest_checkpoint(out)["runner"]["iteration"] == 10  # the redone checkpoint is good


def test_a_run_with_no_usable_checkpoint_starts_over_but_keeps_its_metrics(tmp_path, capsys):
    out = run(small_config(tmp_path, "iterations=10"), progress=False)
    before = pd.read_csv(out / "metrics.csv")
    for path in checkpoints(out):
        path.write_bytes(b"not a checkpoint")
    killed = KILLED
    (out / "summary.json").write_text(json.dumps(killed))  # as if killed

    run(small_config(tmp_path, "iterations=10"), progress=False)
    assert "kept in metrics.unresumed-1.csv" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.unresumed-1.csv"), before)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["resumed"] == 0
    assert pd.read_csv(out / "metrics.csv")["iteration"].tolist() == list(range(1, 11))


# ---------------------------------------------------------------------------------------------- a full disk
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


# -------------------------------------------------------------------------------------- finished runs and task versions
def test_a_finished_run_asked_for_more_says_it_was_not_extended(tmp_path, capsys):
    run(small(tmp_path, "iterations=3"), progress=False)
    run(small(tmp_path, "iterations=5"), progress=False)
    assert "already complete at 3 iterations; nothing was run" in capsys.readouterr().err


def test_a_finished_run_is_not_run_again_and_a_changed_config_is_refused(tmp_path):
    out = run(small_config(tmp_path, "iterations=5"), progress=False)
    stamp = (out / "metrics.csv").stat().st_mtime_ns
    run(small_config(tmp_path, "iterations=5"), progress=False)
    assert (out / "metrics.csv").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="actor_lr: 0.01 -> 0.5"):
        run(small_config(tmp_path, "iterations=5", "actor_lr=0.5"), progress=False)


def test_a_run_records_the_version_of_its_task(tmp_path):
    out = run(small_config(tmp_path, "iterations=2"), progress=False)
    assert json.loads((out / "summary.json").read_text())["task_version"] == get_task("cartpole").version


def test_resuming_on_another_task_version_is_refused_and_changes_nothing(tmp_path, capsys):
    out = run(small_config(tmp_path, "iterations=5"), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    del summary["task_version"]  # written before versions were recorded: version 1
    (out / "summary.json").write_text(json.dumps({**summary, "status": "running"}))  # as if killed
    files = lambda: {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}  # noqa: E731
    before = files()

    version = get_task("cartpole").version
    with pytest.raises(ConfigError, match=f"task version 1, the code's is version {version};.*another run_name"):
        run(small_config(tmp_path, "iterations=10"), progress=False)
    args = ["shac", "cartpole", *KEEP_ALL, f"results_dir={tmp_path}", "run_name=r", "iterations=10", "--no-progress"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert re.fullmatch(r"error: [^\n]* task version 1, [^\n]*start a new run[^\n]*\n", capsys.readouterr().err)
    assert files() == before


# ---------------------------------------------------------------------------------------------- divergence
def test_persistent_non_finite_gradients_end_the_run_as_diverged(tmp_path, monkeypatch):
    rollout = SHAC.window_loss

    def poisoned(self, policy=None):
        loss, window = rollout(self, policy)
        return loss * (float("nan") if self.iteration >= 3 else 1.0), window

    monkeypatch.setattr(SHAC, "window_loss", poisoned)
    out = run(small_config(tmp_path, "iterations=50", "max_skipped_updates=4"), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    metrics = pd.read_csv(out / "metrics.csv")
    assert summary["status"] == "diverged" and summary["skipped_updates"] == 4 and "non-finite" in summary["error"]
    assert metrics["skipped_updates"].tolist() == [0, 0, 0, 1, 1, 1, 1]  # every iteration kept and counted
    state = latest_checkpoint(out)
    assert all(torch.isfinite(v).all() for v in state["learner"]["actor"].values())  # no NaN was applied


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


# ---------------------------------------------------------------------------------------------- logging
def test_wandb_offline_run_holds_the_logged_metrics_and_config(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="optional: pip install '.[wandb]'")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = run(small_config(tmp_path, "iterations=3", "logger=wandb"), progress=False)
    logs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1
    data = logs[0].read_bytes()
    for key in (b"train_return", b"actor_grad_norm", b"time_backward", b"num_envs", b"eval_return"):
        assert key in data, key
