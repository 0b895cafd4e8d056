"""Ready for the first GPU, checked on a CPU: a GPU only torch sees is refused with the fix, jobs get the
GPUs they ask for, timers touch only the run's device, and Warp lands on torch's GPU."""

import importlib
import math
import os
import subprocess
import sys
from argparse import Namespace

import pytest
import submitit
import torch
import warp as wp

from algorithms.common import EpisodeStats, PhaseTimer
from benchmark import sweep
from benchmark.config import ConfigError, load_config
from benchmark.run import run
from envs import DiffEnv, core, cpu_torch_on_gpu_host, cuda_problem, default_device
from envs.physics import warp_device


@pytest.fixture
def torch_sees_a_gpu_warp_none(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(wp, "get_cuda_device_count", lambda: 0)


@pytest.mark.parametrize("device", ["auto", "cuda", "cuda:0"])
def test_a_gpu_warp_cannot_use_is_one_line_naming_the_driver(torch_sees_a_gpu_warp_none, device):
    with pytest.raises(ConfigError) as error:
        load_config("shac", "cartpole", [f"device={device}"])
    message = str(error.value)
    assert "Warp" in message and "driver R580" in message and "device=cpu" in message and "\n" not in message
    assert default_device() == torch.device("cpu") and cuda_problem() == message  # library users: the CPU


def test_without_a_gpu_there_is_no_problem_and_the_cpu_is_chosen():
    assert cuda_problem() is None and default_device() == torch.device("cpu")


def test_a_bare_cuda_device_is_torchs_current_gpu_for_warp_too(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert warp_device(torch.device("cuda")) == "cuda:1" and warp_device(torch.device("cuda:0")) == "cuda:0"
    assert warp_device(torch.device("cpu")) == "cpu"


def test_timers_synchronise_only_the_runs_device(monkeypatch):
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    with PhaseTimer("cpu")("forward"):
        pass
    assert synced == []  # a CPU run on a GPU host touches no GPU (no CUDA context)
    with PhaseTimer(torch.device("cuda:1"))("forward"):
        pass
    assert synced == [torch.device("cuda:1")] * 2


def test_local_jobs_get_a_gpu_each_one_not_in_use(tmp_path, monkeypatch):
    """submitit hides every GPU from a local job that asks for none (CUDA_VISIBLE_DEVICES=""): each job
    must ask for one, and one the running jobs do not hold."""
    assert sweep.pick_gpu([0, 1], busy=[], submitted=0) == (0,)
    assert sweep.pick_gpu([0, 1], busy=[0], submitted=1) == (1,)
    assert sweep.pick_gpu([0, 1], busy=[1], submitted=2) == (0,)
    assert sweep.pick_gpu([0, 1], busy=[0, 1], submitted=3) == (1,)
    assert sweep.pick_gpu([], busy=[], submitted=0) == ()
    seen = []

    def controller(**kwargs):
        seen.append(kwargs["cuda_devices"])
        raise RuntimeError("stop here")

    monkeypatch.setattr(submitit.local.local, "start_controller", controller)
    executor = sweep.executor_for("local", tmp_path, Namespace(time_min=5))
    executor.update_parameters(gpus_per_node=1, visible_gpus=sweep.pick_gpu([0, 1], busy=[0], submitted=1))
    with pytest.raises(RuntimeError, match="stop here"):
        executor.submit(print, "x")
    assert seen == ["1"]
    assert sweep.local_gpus(0) == []  # gpus_per_job=0: none, even on a GPU host


def test_slurm_jobs_ask_for_gpus_where_the_partition_has_them(tmp_path, monkeypatch):
    gres = {"gpu": "gpu:a100:4\n(null)\n", "cpu": "(null)\n"}
    for partition, expected in (("gpu", 1), ("cpu", 0)):
        out = gres[partition]
        monkeypatch.setattr(
            sweep.subprocess, "run", lambda *a, out=out, **k: subprocess.CompletedProcess(a, 0, stdout=out)
        )
        assert sweep.slurm_partition_gpus(partition) == expected
    monkeypatch.setattr(sweep, "slurm_partition_gpus", lambda partition: 1)
    fake_bin = tmp_path / "bin"  # submitit's SLURM executor wants an srun on PATH; nothing is submitted here
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    args = Namespace(time_min=5, cpus=None, gpus=None, array_parallelism=None, signal_delay_s=None, partition="gpu",
                     mem_gb=None)  # fmt: skip
    executor = sweep.executor_for("slurm", tmp_path, args)
    script = executor._executor._make_submission_file_text("python -c pass", "uid")
    assert "#SBATCH --gpus-per-node=1" in script and "#SBATCH --partition=gpu" in script


def test_a_cpu_torch_on_a_machine_with_a_gpu_is_named_with_the_fix(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(core.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(core.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "GPU 0: NVIDIA L4\n"))
    monkeypatch.setattr(torch.version, "cuda", None)
    warning = cpu_torch_on_gpu_host()
    assert "CPU-only build" in warning and "make install GPU=1" in warning and "\n" not in warning
    run(load_config("shac", "cartpole", ["iterations=1", "num_envs=2", "horizon=4", "eval_envs=1", "eval_max_steps=2",
                                         f"results_dir={tmp_path}"]), progress=False)  # fmt: skip
    assert warning in capsys.readouterr().err  # device=auto said it before running on the CPU
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    assert cpu_torch_on_gpu_host() is None  # a CUDA build: nothing to say
    monkeypatch.setattr(core.shutil, "which", lambda name: None)
    monkeypatch.setattr(torch.version, "cuda", None)
    assert cpu_torch_on_gpu_host() is None  # no GPU here: a CPU build is right


@pytest.mark.parametrize("script", ["apg_costs", "update_costs", "physics_speed", "render_speed", "first_iteration"])
def test_every_speed_script_takes_a_device_and_refuses_one_this_machine_lacks_in_one_line(script, monkeypatch, capsys):
    module = importlib.import_module(f"benchmark.speed.{script}")
    monkeypatch.setattr(sys, "argv", [script, "--device", "cuda:3"])
    with pytest.raises(SystemExit) as stop:
        module.main() if script in ("physics_speed", "render_speed") else module.main(["--device", "cuda:3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "--device cuda:3" in err[0] and "no CUDA GPU" in err[0]


def test_a_speed_measurement_records_its_device():
    from benchmark.speed.physics_speed import measure

    assert measure("cartpole", 2, "eager", window=2, no_grad_steps=2, device="cpu")["device"] == "cpu"


def test_deterministic_mode_reaches_every_newton_kernel_module_and_torch():
    probe = (
        "import envs, torch, warp._src.context as c; envs.DiffEnv('cartpole', 2, device='cpu'); "
        "modes = {m.options['deterministic'].name for k, m in c.user_modules.items() if k.startswith('newton')}; "
        "print(*sorted(modes), torch.are_deterministic_algorithms_enabled(), torch.backends.cuda.matmul.allow_tf32)"
    )
    out = {}
    for flag in ("1", "0"):
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              env={**os.environ, "DVA_DETERMINISTIC": flag})  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        out[flag] = done.stdout.split()
    assert out["1"] == ["RUN_TO_RUN", "True", "False"]  # every Newton module, and torch
    assert out["0"][0] == "NOT_GUARANTEED" and out["0"][-2] == "False"


def test_the_gpu_check_runs_every_check_here_and_says_what_it_skipped(capsys):
    from benchmark.diagnostics import gpu_check

    with pytest.raises(SystemExit) as stop:
        gpu_check.main(["--device", "cpu"])
    lines = capsys.readouterr().out.splitlines()
    assert stop.value.code == 0 and not [line for line in lines if line.startswith("FAIL")]
    names = [line.split(":")[0] for line in lines]
    pytorch3d = "ok    PyTorch3D build" if "ok    PyTorch3D build" in names else "skip  PyTorch3D build"
    assert names[:4] == ["ok    devices", "ok    device problems", pytorch3d, "ok    captured step on cpu"]
    assert lines[-1].startswith("skip  GPU checks: this machine")
    assert any(line.startswith("ok    repeatable on cpu: ant, two identical 2-step runs: identical") for line in lines)


def test_a_torch_stream_of_its_own_is_refused_before_it_races_warp(monkeypatch):
    from envs.physics import same_stream_as_warp

    monkeypatch.setattr(torch.cuda, "default_stream", lambda device=None: "legacy")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: "legacy")
    same_stream_as_warp(torch.device("cuda:0"))  # the default stream: ordered, nothing to say
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: "side stream")
    with pytest.raises(RuntimeError, match="non-default CUDA stream"):
        same_stream_as_warp(torch.device("cuda:0"))


def test_a_backward_after_graphs_were_given_up_is_not_captured_again(monkeypatch):
    env = DiffEnv("cartpole", 2, device="cpu", seed=0)
    env.reset(seed=0)
    actions = torch.zeros(2, env.act_dim, requires_grad=True)
    reward = env.step(actions)[1].sum()  # a captured forward
    env.sim.capture_graphs = False  # graphs given up (a later capture failed)
    captures = []
    monkeypatch.setattr(env.sim, "_capture", lambda body: captures.append(body))
    reward.backward()
    assert captures == [] and torch.isfinite(actions.grad).all()


# ---------------------------------------------------------------------------- no host sync per step
def test_a_masked_branch_is_skipped_on_the_cpu_only_and_never_asks_a_device():
    assert core.branch_needed(torch.tensor([False, True])) and not core.branch_needed(torch.zeros(2, dtype=torch.bool))
    # a tensor with no data (like a GPU's, whose read would wait for the device) is never read
    assert core.branch_needed(torch.zeros(2, dtype=torch.bool, device="meta"))


def test_the_reset_branch_run_when_no_episode_ended_changes_nothing(monkeypatch):
    """What a GPU runs every step (:func:`envs.core.branch_needed` says yes) is a no-op for envs still going."""
    states = []
    for always in (False, True):
        if always:
            monkeypatch.setattr(core, "branch_needed", lambda mask: True)
        env = DiffEnv("hopper", num_envs=3, seed=0)
        env.reset()
        with torch.no_grad():
            obs, _, terminated, truncated, _ = env.step(torch.zeros(3, env.act_dim))
        assert not (terminated | truncated).any()
        states.append((obs, env.joint_q, env.joint_qd, env.body_transforms()))
    for cpu, gpu_like in zip(*states, strict=True):
        assert torch.equal(cpu, gpu_like)


def test_episode_statistics_are_summed_on_the_device_and_read_once():
    stats, nan = EpisodeStats(), math.nan
    steps = (([nan, 10.0, nan], [nan, 5.0, nan]), ([nan] * 3, [nan] * 3), ([1.5, nan, 4.0], [7.0, nan, 9.0]))
    for returns, lengths in steps:
        stats.record({"episode_return": torch.tensor(returns), "episode_length": torch.tensor(lengths)})
    assert stats.pop() == {"train_return": pytest.approx(15.5 / 3), "train_episode_length": pytest.approx(7.0)}
    assert all(math.isnan(v) for v in stats.pop().values())  # none since the last pop
