"""Sweeps: the grid, skipping finished runs, failures reported with their logs, one job never harming
another, and nothing a results folder or an argument holds ever run. The local executor here; the SLURM
path in tests/benchmark/test_slurm.py."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pandas as pd
import pytest
import yaml
from submitit.core.utils import JobPaths

from benchmark import sweep
from benchmark.config import ConfigError
from benchmark.sweep import main, parse_seeds, status_table

TINY = ["num_envs=4", "horizon=8", "iterations=3", "eval_envs=2", "device=cpu", "checkpoint_every=2"]


def conflicting_run(root, run):
    """A run directory left by another experiment: the job that should write there must fail."""
    (root / run).mkdir(parents=True)
    (root / run / "config.yaml").write_text(yaml.safe_dump({"algo": "shac", "task": "cartpole", "actor_lr": 0.5}))


def test_seed_ranges():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("1-2,7") == [1, 2, 7]
    with pytest.raises(ConfigError, match="0-4"):
        parse_seeds("zero")
    with pytest.raises(ConfigError, match="the range 4-0 is empty"):
        parse_seeds("4-0")
    with pytest.raises(ConfigError, match="repeat a seed"):
        parse_seeds("0-2,1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--parallel", "-1"], "--parallel=-1 is impossible"),
        (["--seeds", "4-0"], "the range 4-0 is empty"),
        (["results_dir=elsewhere"], "a sweep sets results_dir per run; use --results-dir"),
        (["seed=3"], "a sweep sets seed per run; use --seeds"),
        (["--time-min", "0"], "--time-min=0 is impossible"),
    ],
)
def test_impossible_sweeps_are_refused_before_anything_is_submitted(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--algos", "shac", "--tasks", "cartpole", "--results-dir", str(tmp_path), *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("executor", ["local", "inline"])
def test_a_sweep_completes_reports_its_failure_and_skips_finished_runs(tmp_path, capsys, executor):
    root = tmp_path / "t"
    conflicting_run(root, "shac-cartpole-seed1")
    argv = ["run", "--algos", "shac", "--tasks", "cartpole", "--seeds", "0-1", "--executor", executor,
            "--name", "t", "--results-dir", str(tmp_path), *TINY]  # fmt: skip
    main(argv)
    table = status_table(root).set_index("run")
    assert table.loc["shac-cartpole-seed0", "state"] == "done"
    assert table.loc["shac-cartpole-seed1", "state"] == "failed"
    summary = json.loads((root / "shac-cartpole-seed0" / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["iterations"] == 3
    assert len(pd.read_csv(root / "shac-cartpole-seed0" / "metrics.csv")) == 3

    capsys.readouterr()
    main(["status", "--name", "t", "--results-dir", str(tmp_path)])
    report = capsys.readouterr().out
    assert "1 done, 1 failed" in report and "holds a run with another config" in report  # the log's tail

    main(argv)  # again: the finished run is skipped, the failed one is tried again
    out = capsys.readouterr().out
    assert "skip shac-cartpole-seed0: finished" in out
    records = pd.read_csv(root / ".sweep" / "jobs.csv")
    assert records["run"].tolist() == ["shac-cartpole-seed0", "shac-cartpole-seed1", "shac-cartpole-seed1"]


def test_a_bad_sweep_fails_before_submitting_anything(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--algos", "shac", "--tasks", "cartpol", "--results-dir", str(tmp_path)])
    assert "unknown task 'cartpol'" in capsys.readouterr().err
    assert not (tmp_path / "default").exists()


def test_a_failing_sacct_is_an_error_not_pending(monkeypatch):
    def broken(*args, **kwargs):
        raise subprocess.CalledProcessError(1, args[0], stderr="sacct: error: Problem talking to the database")

    monkeypatch.setattr(sweep.subprocess, "run", broken)
    with pytest.raises(ConfigError, match="sacct failed .*Problem talking to the database.*states are unknown"):
        sweep.slurm_states(["16_0"])


def test_a_reused_pid_is_not_a_running_job(tmp_path):
    """A local job's PID alive but belonging to another process (reused) means the job is gone."""
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        record = pd.Series({"executor": "local", "job_id": str(stranger.pid), "logs": str(tmp_path / "logs")})
        assert sweep.job_state(record) == "failed"
        # like submitit's local job, its command line names the job's folder
        sleeper = "import time; print(flush=True); time.sleep(30)"
        ours = subprocess.Popen([sys.executable, "-c", sleeper, str(tmp_path / "logs")], stdout=subprocess.PIPE)
        try:
            ours.stdout.readline()  # exec'ed: until then /proc shows the forking parent's command line
            record["job_id"] = str(ours.pid)
            assert sweep.job_state(record) == "running"
        finally:
            ours.kill()
    finally:
        stranger.kill()


def test_waiting_for_a_sweep_times_out_loudly(tmp_path, monkeypatch):
    table = pd.DataFrame({"state": ["running", "done"]})
    monkeypatch.setattr(sweep, "status_table", lambda root: table)
    with pytest.raises(TimeoutError, match="1 job\\(s\\) of .* still pending or running after 0 s"):
        sweep.wait_until_settled(tmp_path, timeout_s=0.0, poll_s=0.0)


def test_a_tasks_own_sacct_line_wins_over_its_arrays_stale_range_line(monkeypatch):
    """slurmdbd keeps listing ``16_[2-3%1] PENDING`` after task 2 started; the task's own line must win."""
    sacct = "JobID|State\n16_0|COMPLETED\n16_2|RUNNING\n16_[2-3%1]|PENDING\n17_1|CANCELLED by 0\n17_[4,6-7]|PENDING\n"
    monkeypatch.setattr(sweep.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=sacct))
    states = sweep.slurm_states(["16_0", "16_2", "17_1"])
    assert states == {"16_0": "COMPLETED", "16_2": "RUNNING", "16_3": "PENDING", "17_1": "CANCELLED",
                      "17_4": "PENDING", "17_6": "PENDING", "17_7": "PENDING"}  # fmt: skip


def test_a_slurm_job_that_returned_is_done_even_if_a_late_signal_failed_it(tmp_path):
    """A time-limit signal that lands while a finished job exits makes SLURM say FAILED; submitit's result
    file says the call returned (it is never unpickled) and the run's summary how it went."""
    record = pd.Series({"executor": "slurm", "job_id": "31", "logs": str(tmp_path), "run_status": "complete"})
    assert sweep.job_state(record, {"31": "FAILED"}) == "failed"
    JobPaths(tmp_path, job_id="31", task_id=0).result_pickle.write_bytes(b"not even a pickle")
    assert sweep.job_state(record, {"31": "FAILED"}) == "done"
    record["run_status"] = "failed"
    assert sweep.job_state(record, {"31": "COMPLETED"}) == "failed"


# ------------------------------------------------------------ trust: nothing a results folder or an argument holds runs
class Planted:
    """Unpickling this runs a command: what an attacker would put in a results folder."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


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
