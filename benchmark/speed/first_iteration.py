"""What the first iteration costs once, per task and learner: on a fresh machine (an empty Warp kernel
cache: every module is compiled) and on the next run (the cache is warm), split into Warp kernel modules
built, modules loaded from the cache, graphs captured, and the iteration's own work.

Each case is the runner itself (``benchmark.run``, one iteration, a one-step evaluation) in a fresh
process, its kernel cache a temporary directory, then again on the same directory; the figures are the
run's own (``first_iteration_s`` and the one-off split in its ``summary.json``, see ``envs/one_off.py``).

    python -m benchmark.speed.first_iteration [--tasks cartpole,hopper] [--learners dva,shac_diffrender]
        [--preset cpu] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmark.config import ConfigError, load_config
from benchmark.results import markdown_table
from benchmark.speed.isolated import chosen_device

SHORT = ["iterations=1", "eval_envs=1", "eval_max_steps=1", "torch_threads=1", "logger=none"]


def measure(algo: str, task: str, overrides: list[str], cache: Path, results: Path) -> dict:
    """One run's one-off figures with Warp's kernel cache at ``cache``."""
    name = f"{algo}-{task}-{len(list(results.glob('*')))}"
    cmd = [sys.executable, "-m", "benchmark.run", algo, task, *overrides, *SHORT, f"results_dir={results}",
           f"run_name={name}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "WARP_CACHE_PATH": str(cache)})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        print(f"warning: {algo} on {task} failed: {last}", file=sys.stderr)
        return {}
    return json.loads((results / name / "summary.json").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="cartpole,hopper,ant,humanoid")
    parser.add_argument("--learners", default="dva,shac_diffrender")
    parser.add_argument("--preset", default=None, help="e.g. cpu")
    parser.add_argument("--device", default="auto", help="auto (cuda when torch and Warp see one), cpu, cuda:<i>")
    args = parser.parse_args(argv)
    overrides = [*([f"preset={args.preset}"] if args.preset else []), f"device={chosen_device(args.device)}"]
    tasks, learners = args.tasks.split(","), args.learners.split(",")
    try:  # every case's config, before anything runs
        for task in tasks:
            for algo in learners:
                load_config(algo, task, [*overrides, *SHORT])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="first-iteration-") as tmp:
        for task in tasks:
            for algo in learners:
                cache = Path(tmp) / f"cache-{algo}-{task}"
                for when in ("fresh machine", "next run"):
                    summary = measure(algo, task, overrides, cache, Path(tmp) / "runs")
                    if summary:
                        rows.append({
                            "task": task, "learner": algo, "kernel cache": when,
                            "first iteration s": summary["first_iteration_s"],
                            "modules built": summary["kernel_modules_built"],
                            "built s": summary["kernels_built_s"],
                            "modules loaded": summary["kernel_modules_loaded"],
                            "loaded s": summary["kernels_loaded_s"],
                            "graphs": summary["graphs_captured"],
                            "capture s": summary["graph_capture_s"],
                        })  # fmt: skip
    if not rows:
        print("error: every measurement failed (warnings above)", file=sys.stderr)
        sys.exit(1)
    table = pd.DataFrame(rows).round(2)
    print("One-off costs from building the env to the end of the first iteration" +
          (f" (preset {args.preset})" if args.preset else " (the paper's settings)") + ", one thread:")  # fmt: skip
    print(markdown_table(table))


if __name__ == "__main__":
    main()
