"""The sweep path on a real SLURM cluster: submitit -> sbatch -> slurmd runs the job -> results read back.

The one-node cluster comes from tests/slurm/start.sh (Debian, root; a few seconds once installed).
Where it cannot start, these tests skip with its reason.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from test_sweep import TINY, conflicting_run

from benchmark.sweep import main, status_table

START = Path(__file__).resolve().parents[1] / "slurm" / "start.sh"
pytestmark = pytest.mark.xdist_group("slurm")  # one cluster: its tests run one after another on one worker


@pytest.fixture(scope="module")
def slurm():
    if shutil.which("bash") is None:
        pytest.skip("no bash to run tests/slurm/start.sh")
    started = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        reason = (started.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"no local SLURM cluster: {reason}")
    if shutil.which("sbatch") is None:
        pytest.skip("tests/slurm/start.sh ran but sbatch is not on PATH")


def sweep(tmp_path, name, algos, seeds, *extra):
    main(["run", "--algos", algos, "--tasks", "cartpole", "--seeds", seeds, "--executor", "slurm",
          "--name", name, "--results-dir", str(tmp_path), "--cpus", "1", "--time-min", "10", "--wait",
          *extra])  # fmt: skip
    return status_table(tmp_path / name).set_index("run")


def test_a_slurm_sweep_completes_reports_its_failure_and_skips_finished_runs(slurm, tmp_path, capsys):
    root = tmp_path / "grid"
    conflicting_run(root, "dpg_state-cartpole-seed1")
    table = sweep(tmp_path, "grid", "shac,dpg_state", "0-1", *TINY)
    assert table["executor"].eq("slurm").all() and table["job_id"].str.match(r"^\d+_\d+$").all()  # an array
    assert table.loc["dpg_state-cartpole-seed1", "state"] == "failed"
    done = table.drop(index="dpg_state-cartpole-seed1")
    assert done["state"].eq("done").all(), done
    for run in done.index:
        summary = json.loads((root / run / "summary.json").read_text())
        assert summary["status"] == "complete" and summary["iterations"] == 3
        assert len(pd.read_csv(root / run / "metrics.csv")) == 3

    capsys.readouterr()
    main(["status", "--name", "grid", "--results-dir", str(tmp_path)])
    report = capsys.readouterr().out
    assert "3 done, 1 failed" in report and "holds a run with another config" in report

    shutil.rmtree(root / "dpg_state-cartpole-seed1")  # the conflict is cleared: only that run goes again
    table = sweep(tmp_path, "grid", "shac,dpg_state", "0-1", *TINY)
    out = capsys.readouterr().out
    assert out.count(": finished") == 3 and "nothing to submit" not in out
    assert table["state"].eq("done").all(), table
    records = pd.read_csv(root / ".sweep" / "jobs.csv")
    assert len(records) == 5 and records["run"].iloc[-1] == "dpg_state-cartpole-seed1"

    sweep(tmp_path, "grid", "shac,dpg_state", "0-1", *TINY)
    assert "nothing to submit" in capsys.readouterr().out
    assert len(pd.read_csv(root / ".sweep" / "jobs.csv")) == 5


def test_a_job_at_its_time_limit_is_requeued_and_resumes_from_its_checkpoint(slurm, tmp_path):
    """SLURM signals the job 30 s before its 2-minute limit; slurmctld checks limits every 30 s, so the
    signal comes 60-90 s after the start. The first job cannot finish the 90 s training budget before
    it; submitit requeues it and the run goes on from its checkpoint. The budget counts training time
    only, so the resumed run stops at about 90 s of training in all, not 90 s more."""
    overrides = ["num_envs=4", "horizon=8", "iterations=1000000", "eval_envs=2", "device=cpu",
                 "checkpoint_every=5", "torch_threads=1", "budget=90s"]  # fmt: skip
    table = sweep(tmp_path, "limit", "shac", "0", "--time-min", "2", "--signal-delay-s", "30", *overrides)
    assert table.loc["shac-cartpole-seed0", "state"] == "done", table
    summary = json.loads((tmp_path / "limit" / "shac-cartpole-seed0" / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["resumed"] >= 1
    assert 90 <= summary["wall_clock"] < 100
    metrics = pd.read_csv(tmp_path / "limit" / "shac-cartpole-seed0" / "metrics.csv")
    assert metrics["iteration"].is_monotonic_increasing and metrics["iteration"].is_unique
    assert metrics["iteration"].iloc[-1] == summary["iterations"]
