"""Table 1 and Fig. 10 of the D.Va paper, measured here: backward time per iteration and peak memory
of one iteration, ``dva`` vs ``shac_diffrender``, per task, same machine and settings, in one run.

``python -m benchmark.apg_costs [--preset cpu] [--iterations 4]`` prints a Markdown table (median of the
measured iterations, after one warm-up) and writes ``results/figures/apg_costs.{csv,md,png}``.
Each (algo, task) runs in its own process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from algorithms import get_learner  # noqa: E402
from benchmark.config import learner_config, load_config  # noqa: E402
from benchmark.isolated import run_isolated  # noqa: E402
from benchmark.results import markdown_table  # noqa: E402
from benchmark.run import make_env, peak_memory_mb  # noqa: E402

ALGOS = ("dva", "shac_diffrender")


def measure(algo: str, task: str, overrides: list[str], iterations: int) -> dict:
    cfg = load_config(algo, task, [*overrides, "device=cpu"])
    torch.manual_seed(0)
    env = make_env(cfg, cfg.num_envs, torch.device("cpu"), 0)
    learner = get_learner(cfg.learner)(env, learner_config(cfg))
    learner.train_iteration()  # warm-up: kernel compilation, allocator growth
    rows = [learner.train_iteration() for _ in range(iterations)]
    median = lambda key: float(np.median([r.get(key, 0.0) for r in rows]))  # noqa: E731
    return {
        "algo": algo,
        "task": task,
        "num_envs": cfg.num_envs,
        "horizon": cfg.horizon,
        "image_size": cfg.image_size,
        "backward_s": median("time_backward"),
        "forward_s": median("time_forward"),
        "render_s": median("time_render"),
        "peak_memory_mb": peak_memory_mb(torch.device("cpu")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cartpole,hopper,ant,humanoid")
    parser.add_argument("--preset", default=None, help="e.g. cpu")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for both learners, key=value")
    parser.add_argument("--out", type=Path, default=Path("results/figures"))
    parser.add_argument("--one", nargs=2, metavar=("ALGO", "TASK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = [*([f"preset={args.preset}"] if args.preset else []), *args.set]
    if args.one:
        print(json.dumps(measure(*args.one, overrides, args.iterations)))
        return
    rows = []
    for task in args.tasks.split(","):
        for algo in ALGOS:
            extra = ["--iterations", str(args.iterations), *(["--preset", args.preset] if args.preset else [])]
            if args.set:
                extra += ["--set", *args.set]
            rows.append(run_isolated("benchmark.apg_costs", algo, task, *extra))
    table = pd.DataFrame(rows)
    wide = table.pivot(index="task", columns="algo", values=["backward_s", "peak_memory_mb"])
    summary = pd.DataFrame(
        {
            "backward dva (s)": wide["backward_s"]["dva"],
            "backward shac_diffrender (s)": wide["backward_s"]["shac_diffrender"],
            "ratio": wide["backward_s"]["shac_diffrender"] / wide["backward_s"]["dva"],
            "memory dva (MB)": wide["peak_memory_mb"]["dva"],
            "memory shac_diffrender (MB)": wide["peak_memory_mb"]["shac_diffrender"],
        }
    ).reindex(args.tasks.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "apg_costs.csv", index=False)
    markdown = markdown_table(summary.round(3).reset_index())
    (args.out / "apg_costs.md").write_text(markdown + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    summary[["backward dva (s)", "backward shac_diffrender (s)"]].plot.bar(ax=axes[0], rot=0)
    summary[["memory dva (MB)", "memory shac_diffrender (MB)"]].plot.bar(ax=axes[1], rot=0)
    axes[0].set(ylabel="backward time per iteration (s)", title="Table 1")
    axes[1].set(ylabel="peak memory of one iteration (MB)", title="Fig. 10")
    fig.tight_layout()
    fig.savefig(args.out / "apg_costs.png", dpi=120)
    print(markdown)


if __name__ == "__main__":
    main()
