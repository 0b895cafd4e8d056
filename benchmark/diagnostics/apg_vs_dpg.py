"""Fig. 3 of the D.Va paper: the full analytic policy gradient (APG, SHAC's) against the decoupled one
(DPG, D.Va's), in state space, at checkpoints of a state SHAC run.

For a window of H steps with actions ``a_t = pi_theta(o(s_t))`` and loss ``L`` (SHAC's actor loss),

    dL/dtheta = sum_t  dL/da_t . da_t/dtheta                      (dL/da_t: open loop, later actions fixed)
              = sum_t  dL/da_t . dpi/dtheta                        DPG: what ``actor(obs.detach())`` gives
              + sum_t  dL/da_t . dpi/do . do/ds . ds_t/dtheta      control regularisation: through the obs

:func:`window_gradients` computes the three on one batch (same start states, same policy noise), each in
its own rollout, so ``full == dpg + control_regularisation`` is a check, not an identity of the code.

``python -m benchmark.diagnostics.apg_vs_dpg [--tasks cartpole,hopper] [--preset cpu] [--run DIR]`` trains state SHAC
keeping every checkpoint (or reads an existing ``--run``), measures cosine similarity and norm ratio
at each, and writes ``results/figures/apg_vs_dpg.{csv,md,png}``.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch.func import functional_call  # noqa: E402

from algorithms import get_learner  # noqa: E402
from algorithms.shac import SHAC  # noqa: E402
from benchmark.build import make_env  # noqa: E402
from benchmark.cli import parse_names, usage_error  # noqa: E402
from benchmark.config import ConfigError, learner_config, load_config  # noqa: E402
from benchmark.figures.report import apg_vs_dpg_figure  # noqa: E402
from benchmark.results import checkpoints, load_run_config, markdown_table  # noqa: E402
from benchmark.run import run  # noqa: E402
from envs.tasks import registry as task_registry  # noqa: E402


@dataclass
class Gradients:
    """Flattened actor-parameter gradients of one window."""

    full: torch.Tensor
    dpg: torch.Tensor
    control_regularisation: torch.Tensor

    @property
    def cosine(self) -> float:
        return torch.nn.functional.cosine_similarity(self.full, self.dpg, dim=0).item()

    @property
    def norm_ratio(self) -> float:
        """|APG| / |DPG|."""
        return (self.full.norm() / self.dpg.norm()).item()


def window_gradients(learner: SHAC, noise_seed: int = 0) -> Gradients:
    """APG, DPG and the control-regularisation term on the learner's next window, without training.

    The env, the learner's current observation and its normaliser are restored after every rollout,
    so all four rollouts start from the same states and draw the same policy noise."""
    if learner.encoder is not None:
        raise ValueError("the APG/DPG decomposition is measured in state space (a learner without renderer)")
    env, actor, cfg = learner.env, learner.actor, learner.config
    params = list(actor.parameters())
    start = (env.snapshot(), learner.obs.detach(), learner.state.detach(), copy.deepcopy(learner.obs_rms.state_dict()))
    generator = torch.Generator(device=env.device).manual_seed(noise_seed)
    noise = torch.randn(cfg.horizon, env.num_envs, env.act_dim, generator=generator, device=env.device)

    def restore() -> None:
        env.restore(start[0])
        learner.obs, learner.state = start[1], start[2]
        learner.obs_rms.load_state_dict(start[3])

    def replay(policy) -> torch.Tensor:
        restore()
        loss, _ = learner.window_loss(policy)
        return loss

    def flat(grads) -> torch.Tensor:
        return torch.cat([g.flatten() for g in grads])

    actions: list[torch.Tensor] = []

    def attached(t, obs):
        actions.append(actor(learner.features(obs), noise=noise[t]))
        return actions[-1]

    full = flat(torch.autograd.grad(replay(attached), params))
    detached = lambda t, obs: actor(learner.features(obs.detach()), noise=noise[t])  # noqa: E731
    dpg = flat(torch.autograd.grad(replay(detached), params))

    # dL/da_t with the action sequence held fixed (open loop): the actions as leaves
    leaves = [a.detach().requires_grad_() for a in actions]
    adjoints = torch.autograd.grad(replay(lambda t, obs: leaves[t]), leaves)

    # sum_t adjoint_t . pi_frozen(o_t(theta)): its theta-gradient runs only through the observations
    frozen = {name: p.detach() for name, p in actor.named_parameters()}
    surrogate: list[torch.Tensor] = []

    def closed_loop(t, obs):
        features = learner.features(obs)
        frozen_action = functional_call(actor, frozen, (features,), {"noise": noise[t]})
        surrogate.append((adjoints[t] * frozen_action).sum())
        return actor(features, noise=noise[t])

    replay(closed_loop)
    control = flat(torch.autograd.grad(torch.stack(surrogate).sum(), params, allow_unused=True, materialize_grads=True))
    restore()
    return Gradients(full, dpg, control)


def measure_checkpoint(cfg, checkpoint: Path | None, batches: int, warmup: int, seed: int = 0) -> dict:
    """Mean cosine and norm ratio over ``batches`` windows of the checkpoint's policy (None: untrained)."""
    torch.manual_seed(seed)
    env = make_env(cfg, cfg.num_envs, torch.device("cpu"), seed)
    learner = get_learner(cfg.learner)(env, learner_config(cfg))
    if checkpoint is not None:
        learner.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["learner"])
    rows = []
    for batch in range(batches):
        with torch.no_grad():  # spread the envs over their episodes with the policy itself
            obs = env.reset(seed=seed + batch)
            for _ in range(warmup):
                obs, *_ = env.step(learner.act(obs, deterministic=False))
        learner.obs, learner.state = obs, env.state_observation()
        grads = window_gradients(learner, noise_seed=seed + batch)
        rows.append({"cosine": grads.cosine, "norm_ratio": grads.norm_ratio})
    frame = pd.DataFrame(rows)
    return {"iteration": learner.iteration, **frame.mean().to_dict(), "cosine_std": frame["cosine"].std()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="cartpole,hopper,ant,humanoid")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--iterations", type=int, default=None, help="state SHAC iterations (default: config)")
    parser.add_argument("--checkpoints", type=int, default=5, help="checkpoints measured along training")
    parser.add_argument("--batches", type=int, default=4, help="windows averaged per checkpoint")
    parser.add_argument("--warmup", type=int, default=48, help="policy steps from reset before a window")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides, key=value")
    parser.add_argument("--run", type=Path, action="append", default=[], help="measure this run instead of training")
    parser.add_argument("--out", type=Path, default=Path("results/figures"))
    args = parser.parse_args()

    for run_dir in args.run:
        if not (run_dir / "config.yaml").is_file():
            usage_error(parser, f"--run {run_dir}: not a run directory (no config.yaml); pass results/<run>/")
    tasks = [] if args.run else parse_names(parser, "--tasks", args.tasks, task_registry())
    try:  # every config, before anything trains
        for task in tasks:
            load_config("shac", task, [*([f"preset={args.preset}"] if args.preset else []), *args.set])
    except ConfigError as error:
        usage_error(parser, str(error))
    rows = []
    targets = [(None, run_dir) for run_dir in args.run] or [(task, None) for task in tasks]
    for task, existing in targets:
        if existing is not None:
            cfg = load_run_config(existing)
        else:
            overrides = [*([f"preset={args.preset}"] if args.preset else []), *args.set, "device=cpu"]
            total = args.iterations or load_config("shac", task, overrides).iterations
            cfg = load_config(
                "shac", task,
                [*overrides, f"iterations={total}", f"checkpoint_every={max(total // args.checkpoints, 1)}",
                 "keep_checkpoints=0", f"run_name=apg_vs_dpg-{task}"],
            )  # fmt: skip
            existing = run(cfg)
        for checkpoint in [None, *checkpoints(existing)]:
            row = measure_checkpoint(cfg, checkpoint, args.batches, args.warmup)
            rows.append({"task": cfg.task, **row})
            print(f"{cfg.task} iteration {row['iteration']}: cosine {row['cosine']:.3f} "
                  f"(std {row['cosine_std']:.3f}), |APG|/|DPG| {row['norm_ratio']:.3f}", flush=True)  # fmt: skip

    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "apg_vs_dpg.csv", index=False)
    (args.out / "apg_vs_dpg.md").write_text(markdown_table(table.round(3)) + "\n")
    fig = apg_vs_dpg_figure(table)
    fig.savefig(args.out / "apg_vs_dpg.png", dpi=120)
    plt.close(fig)
    print(markdown_table(table.round(3)))


if __name__ == "__main__":
    main()
