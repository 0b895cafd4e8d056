"""What the replay learners cost, to size a machine: ``python -m benchmark.speed.update_costs`` (``make
update-costs``) prints, per learner and settings, the seconds per update and per iteration (one vector
step of the envs and its share of updates), the replay buffer's memory at its configured size and the
measuring process's peak memory. Each case runs in its own process, one thread, after the replay holds enough frames.

The buffer is measured as configured (``ReplayBuffer.nbytes``), but allocated at ``--fill`` frames so
the paper's 1e6-frame buffers (~21 GB at 84 x 84) need not fit in this machine's memory.

``--before <ref>`` also measures the learners as they were at a git commit, each case right before the
current code's, and adds the speed-up per update: before and after from one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from algorithms import get_learner
from algorithms.replay import ReplayBuffer
from benchmark.build import make_env
from benchmark.cli import parse_names, usage_error
from benchmark.config import ConfigError, learner_config, load_config
from benchmark.memory import keep_freed_memory, peak_memory_mb
from benchmark.speed.isolated import MeasurementFailed, run_isolated
from envs.tasks import registry as task_registry

LEARNERS = ("drqv2", "curl", "dreamerv3")
SETTINGS = {"paper": [], "cpu": ["preset=cpu"]}


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(algo: str, task: str, setting: str, fill: int, iterations: int, extra: list[str], device: str) -> dict:
    torch.set_num_threads(1)
    keep_freed_memory()
    cfg = load_config(algo, task, [*SETTINGS[setting], *extra, f"device={device}"])
    env = make_env(cfg, cfg.num_envs, torch.device(device), 0)
    frame_shape = (3, cfg.image_size, cfg.image_size)
    configured = ReplayBuffer.bytes_for(cfg.buffer_size, cfg.num_envs, frame_shape, env.act_dim)
    no_burst = ["pretrain=0"] if algo == "dreamerv3" else []  # DreamerV3's one-off pretrain updates are not its rate
    small = learner_config(
        load_config(
            algo,
            task,
            [*SETTINGS[setting], *extra, f"buffer_size={fill}", "seed_frames=0", *no_burst, f"device={device}"],
        )  # fmt: skip
    )
    learner = get_learner(algo)(env, small)
    while not learner.ready():
        learner.train_iteration()
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    per_update, per_step = [], []
    for _ in range(iterations):
        per_step.append(timed(learner.collect))
        per_update.append(timed(learner.update))
    per_iteration = median(per_step) + learner.updates_per_step * median(per_update)
    batch = cfg.batch_size * cfg.get("batch_length", 1)
    return {
        "learner": algo, "task": task, "settings": setting, "envs": cfg.num_envs, "image": cfg.image_size,
        "batch": batch, "updates per iteration": learner.updates_per_step,
        "s / update": median(per_update), "s / iteration": per_iteration,
        "replay GB (configured)": configured / 1e9, "buffer frames": cfg.buffer_size,
        "device": device, "peak memory GB": peak_memory_mb(torch.device(device)) / 1024,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", default=",".join(LEARNERS))
    parser.add_argument("--tasks", default="cartpole")
    parser.add_argument("--settings", default="cpu,paper")
    parser.add_argument("--fill", type=int, default=20_000, help="frames actually allocated for the measurement")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="measure each case this many times (median)")
    parser.add_argument("--device", default="auto", help="auto (cuda when torch and Warp see one), cpu, cuda:<i>")
    parser.add_argument("--before", metavar="REF", help="also measure the learners of this git commit")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every case")
    parser.add_argument("--one", nargs=3, metavar=("ALGO", "TASK", "SETTINGS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one, args.fill, args.iterations, args.set, args.device)))
        return
    from benchmark.speed.isolated import chosen_device  # here: measuring processes may run an older checkout

    args.device = chosen_device(args.device)
    if args.before and args.device != "cpu":
        usage_error(
            parser, f"--before measures on the CPU only (older code takes no device); drop --device {args.device}"
        )
    learners = parse_names(parser, "--learners", args.learners, LEARNERS)
    tasks = parse_names(parser, "--tasks", args.tasks, task_registry())
    settings = parse_names(parser, "--settings", args.settings, SETTINGS)
    if min(args.iterations, args.fill, args.rounds) < 1:
        usage_error(parser, "--iterations, --fill and --rounds must be positive")
    try:
        for algo in learners:
            for task in tasks:
                for setting in settings:
                    load_config(algo, task, [*SETTINGS[setting], *args.set])
    except ConfigError as error:
        usage_error(parser, str(error))
    if args.before:
        # imported here: the measuring processes run this file against an older checkout's modules
        from benchmark.speed.isolated import checkout, require_commit

        require_commit(args.before)
        with checkout(args.before) as root:
            table(learners, tasks, settings, args, root)
    else:
        table(learners, tasks, settings, args, None)


def table(learners: list[str], tasks: list[str], settings: list[str], args: argparse.Namespace,
          before: Path | None) -> None:  # fmt: skip
    """One row per case (and per code with ``before``: the commit's, then the current). Codes alternate
    for ``--rounds`` rounds and each row is the round of median seconds per update, so a load that
    comes and goes on the machine falls on both alike."""
    header = None
    codes = ["before", "now"] if before else ["now"]
    for algo in learners:
        for task in tasks:
            for setting in settings:
                rounds: dict[str, list[dict]] = {code: [] for code in codes}
                for _ in range(args.rounds):
                    for code in codes:
                        try:
                            rounds[code].append(run_isolated(
                                "benchmark.speed.update_costs", algo, task, setting, "--fill", str(args.fill),
                                "--iterations", str(args.iterations), "--set", *args.set,
                                "--device", args.device,
                                code_root=before if code == "before" else None))  # fmt: skip
                        except MeasurementFailed as error:
                            print(f"warning: {algo} {task} {setting} ({code}): {error.reason}", file=sys.stderr)
                first = None
                for code in codes:
                    if not rounds[code]:
                        continue
                    row = sorted(rounds[code], key=lambda r: r["s / update"])[len(rounds[code]) // 2]
                    if before:
                        first = first or row["s / update"]
                        row = {"code": args.before if code == "before" else "now", **row,
                               "speed-up": first / row["s / update"]}  # fmt: skip
                    if header is None:
                        header = list(row)
                        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
                    cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
                    print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
