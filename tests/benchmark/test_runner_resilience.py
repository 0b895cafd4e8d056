"""Runs that die, are corrupted or diverge: resume from the last good checkpoint, never lose results."""

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
from benchmark.config import ConfigError, load_config
from benchmark.results import checkpoints, latest_checkpoint, load_metrics
from benchmark.run import main, run
from envs import get_task

SMALL = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "checkpoint_every=5", "keep_checkpoints=0"]
# the summary of a run killed while it trained: the runner writes the versions it runs before anything else
KILLED = {"status": "running", "task_version": get_task("cartpole").version, "learner_version": SHAC.version}


def small_config(tmp_path, *extra):
    return load_config("shac", "cartpole", [*SMALL, f"results_dir={tmp_path}", "run_name=r", *extra])


class FakeClock:
    """``time`` for ``benchmark.run`` whose ``perf_counter`` advances 1 s per reading: each iteration (read
    at its start and end) takes exactly 1 s, so wall-clock sums can be checked exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    args = [*SMALL, f"results_dir={tmp_path}", "run_name=r", "iterations=40"]
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
    args = ["shac", "cartpole", *SMALL, f"results_dir={tmp_path}", "run_name=r", "iterations=10", "--no-progress"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert re.fullmatch(r"error: [^\n]* task version 1, [^\n]*start a new run[^\n]*\n", capsys.readouterr().err)
    assert files() == before


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
