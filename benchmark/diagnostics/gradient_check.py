"""Tape gradients vs central finite differences through the env layer, and the contact laws compared.

``python -m benchmark.diagnostics.gradient_check [--tasks hopper,ant]`` prints the table per task (every
registered task by default; one added since gets a default window); the tests call :func:`check_task`.
``--contact-laws`` compares dflex's and Newton's contact laws on each contact task: finite-difference
agreement of the contact windows, and the spread across seeds of an actor's gradient over a 32-step
window (:func:`actor_gradient_spread`).
The loss is the window's summed reward (what SHAC differentiates); gradients are taken with respect to
the action sequence and the initial joint velocities, on a random subset of coordinates. The perturbed
runs replay the contact sets of the differentiated run: contact detection is not differentiated (the
tape freezes each step's contact points), so this compares the tape with the map it differentiates.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from benchmark.cli import parse_names
from envs import DiffEnv, get_task, registry


@dataclass
class GradCheck:
    task: str
    steps: int
    wrt: str
    analytic: np.ndarray
    numeric: np.ndarray

    @property
    def rel_error(self) -> float:
        """||analytic - numeric|| / ||numeric|| over the checked coordinates."""
        return float(np.linalg.norm(self.analytic - self.numeric) / max(np.linalg.norm(self.numeric), 1e-12))

    @property
    def elementwise(self) -> np.ndarray:
        """Per-coordinate relative error (near-zero entries measured against 1e-3 of the largest)."""
        scale = np.abs(self.numeric) + 1e-3 * np.abs(self.numeric).max()
        return np.abs(self.analytic - self.numeric) / scale

    @property
    def median_elementwise(self) -> float:
        return float(np.median(self.elementwise))

    def share_within(self, tolerance: float) -> float:
        """Share of coordinates whose relative error is below ``tolerance``."""
        return float((self.elementwise < tolerance).mean())


def _window_loss(env: DiffEnv, q0, qd0, actions) -> torch.Tensor:
    env.joint_q, env.joint_qd = q0, qd0
    env.actions = torch.zeros_like(env.actions)
    env.progress.zero_()
    total = 0.0
    for a in actions:
        _, reward, terminated, truncated, _ = env.step(a)
        if (terminated | truncated).any():
            raise RuntimeError("an env reset inside the gradient-check window; pick another start state")
        total = total + reward.sum()
    return total


def start_state(
    env: DiffEnv, settle_steps: int, q_offset: dict[int, float], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded noisy reset, ``settle_steps`` zero-action steps (feet on the ground for contact tasks),
    then ``q_offset`` (coordinate -> offset): e.g. a root lifted 2 m runs the window in the air."""
    env.reset(seed=seed)
    with torch.no_grad():
        for _ in range(settle_steps):
            env.step(torch.zeros(env.num_envs, env.act_dim, device=env.device))
    q, qd = env.joint_q.clone(), env.joint_qd.clone()
    for index, offset in q_offset.items():
        q[:, index] += offset
    return q, qd


def check_task(
    env: DiffEnv,
    steps: int,
    settle_steps: int = 10,
    q_offset: dict[int, float] | None = None,
    coords: int = 12,
    eps: float = 1e-2,
    seed: int = 0,
    amplitude: float = 0.3,
) -> list[GradCheck]:
    """Compare tape and finite-difference gradients of the window reward on ``coords`` random coordinates."""
    rng = np.random.default_rng(seed)
    q0, qd0 = start_state(env, settle_steps, q_offset or {}, seed)
    actions = amplitude * torch.from_numpy(rng.uniform(-1, 1, (steps, env.num_envs, env.act_dim)).astype(np.float32))
    actions = actions.to(env.device)

    a_var, qd_var = actions.clone().requires_grad_(True), qd0.clone().requires_grad_(True)
    env.cut_graph()
    with env.sim.recorded_contacts() as contact_sets:
        _window_loss(env, q0, qd_var, a_var).backward()

    def numeric(tensor: torch.Tensor, analytic: torch.Tensor, name: str) -> GradCheck:
        picks = rng.choice(tensor.numel(), size=min(coords, tensor.numel()), replace=False)
        fd = []
        for index in picks:
            values = []
            for sign in (1.0, -1.0):
                bumped = tensor.clone().view(-1)
                bumped[index] += sign * eps
                bumped = bumped.view_as(tensor)
                with torch.no_grad(), env.sim.replayed_contacts(contact_sets):
                    args = (q0, bumped, actions) if name == "initial velocity" else (q0, qd0, bumped)
                    values.append(float(_window_loss(env, *args)))
            fd.append((values[0] - values[1]) / (2 * eps))
        return GradCheck(env.task.name, steps, name, analytic.reshape(-1)[picks].cpu().numpy(), np.array(fd))

    return [numeric(actions, a_var.grad, "actions"), numeric(qd0, qd_var.grad, "initial velocity")]


@dataclass(frozen=True)
class Case:
    """One checked window: settle, shift the state, then ``steps`` steps of random actions."""

    task: str
    steps: int
    contact: bool
    settle_steps: int = 0
    q_offset: tuple[tuple[int, float], ...] = ()  # (coordinate, offset) pairs
    amplitude: float = 0.3  # random actions in [-amplitude, amplitude]
    eps: float = 1e-2  # finite-difference step

    def run(self, env: DiffEnv, coords: int = 12, seed: int = 0) -> list[GradCheck]:
        return check_task(
            env, self.steps, self.settle_steps, dict(self.q_offset), coords, self.eps, seed, self.amplitude
        )


# Cartpole starts 1 rad off hanging-down (the reward's wrapped angle has a kink at exactly down). The
# in-air windows lift the root 2 m and use small actions so no joint reaches a limit (another kink);
# resting contact windows are avoided for the same reason (a resting ant leans on its ankle limits),
# and contact windows use a small step: stiff penalty contacts make the kinks close together.
CASES = [
    Case("cartpole", 8, contact=False, q_offset=((1, -1.0),), eps=1e-2),  # smooth: float32 noise sets eps
    Case("hopper", 8, contact=True, settle_steps=15, eps=1e-3),
    Case("ant", 8, contact=True, settle_steps=15, eps=1e-3),
    Case("humanoid", 4, contact=True, settle_steps=20, eps=3e-2),  # 48 substeps: float32 noise needs a larger step
    Case("ant", 16, contact=False, q_offset=((2, 2.0),), amplitude=0.1, eps=3e-2),
    Case("humanoid", 16, contact=False, q_offset=((2, 2.0),), amplitude=0.02, eps=3e-2),
]


def cases_for(task: str) -> list[Case]:
    """The windows checked for ``task``: the hand-chosen ones above, else (a task added since) 8 steps
    from its start state, after 15 settling steps where it has contacts."""
    chosen = [case for case in CASES if case.task == task]
    if chosen:
        return chosen
    contact = get_task(task).contact is not None
    return [Case(task, 8, contact=contact, settle_steps=15 if contact else 0, eps=1e-3 if contact else 1e-2)]


def actor_gradient_spread(
    env: DiffEnv, seeds: int = 8, horizon: int = 32, warmup_steps: int = 30, hidden: int = 64
) -> dict[str, float]:
    """Gradient of a fixed random tanh-MLP actor's mean window reward (SHAC's actor loss, no critic),
    from ``seeds`` different starts: a noisy reset, then ``warmup_steps`` of uniform random actions drawn
    from that seed, so each window starts in its own contact configuration (feet landing, sliding, off
    the ground), as windows do in training.

    A law whose gradients are dominated by contact events gives directions that disagree from one batch
    of starts to the next: ``relative_spread`` = E||g_s - mean g||^2 / ||mean g||^2 (0: every seed
    agrees), ``mean_cosine`` = mean cosine between each g_s and the mean, and the largest norm over seeds.
    """
    torch.manual_seed(0)
    actor = torch.nn.Sequential(
        torch.nn.Linear(env.obs_dim, hidden), torch.nn.ELU(), torch.nn.Linear(hidden, env.act_dim), torch.nn.Tanh()
    ).to(env.device)
    grads = []
    for seed in range(seeds):
        obs = env.reset(seed=seed)
        pushes = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for _ in range(warmup_steps):
                obs = env.step((2 * torch.rand(env.num_envs, env.act_dim, generator=pushes) - 1).to(env.device))[0]
        env.cut_graph()
        actor.zero_grad()
        total = 0.0
        for _ in range(horizon):
            obs, reward, _, _, _ = env.step(actor(obs))
            total = total + reward.mean()
        (-total / horizon).backward()
        env.cut_graph()
        grads.append(torch.cat([p.grad.reshape(-1) for p in actor.parameters()]))
    g = torch.stack(grads)
    mean = g.mean(0)
    cosine = torch.nn.functional.cosine_similarity(g, mean[None], dim=-1)
    finite = bool(torch.isfinite(g).all())
    return {
        "relative_spread": float(((g - mean) ** 2).sum(-1).mean() / mean.pow(2).sum()) if finite else float("nan"),
        "mean_cosine": float(cosine.mean()) if finite else float("nan"),
        "max_norm": float(g.norm(dim=-1).max()),
        "median_norm": float(g.norm(dim=-1).median()),
    }


def compare_contact_laws(tasks: list[str], num_envs: int, coords: int, seeds: int) -> None:
    """One row per contact task and law: finite-difference agreement and actor-gradient spread."""
    from envs.contact import CONTACT_LAWS

    print("| task | contact law | FD median error | FD share within 10% | actor grad: relative spread "
          "| mean cosine to mean | median norm | max norm |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for case in (c for task in tasks for c in cases_for(task) if c.contact):
        for law in CONTACT_LAWS:
            env = DiffEnv(case.task, num_envs, device="cpu", contact_law=law)
            checks = case.run(env, coords=coords)
            median = float(np.median([c.median_elementwise for c in checks]))
            share = float(np.mean([c.share_within(0.1) for c in checks]))
            spread = actor_gradient_spread(env, seeds=seeds)
            print(
                f"| {case.task} | {law} | {median:.2e} | {share:.0%} | {spread['relative_spread']:.2f} "
                f"| {spread['mean_cosine']:.2f} | {spread['median_norm']:.3g} | {spread['max_norm']:.3g} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--coords", type=int, default=12)
    parser.add_argument("--contact-laws", action="store_true", help="compare dflex's and Newton's contact laws")
    parser.add_argument("--seeds", type=int, default=8, help="--contact-laws: starts per actor-gradient spread")
    parser.add_argument("--tasks", default=",".join(registry()), help="comma-separated (default: every task)")
    args = parser.parse_args()
    tasks = parse_names(parser, "--tasks", args.tasks, registry())
    if args.contact_laws:
        torch.set_num_threads(1)
        compare_contact_laws(tasks, max(args.num_envs, 16), args.coords, args.seeds)
        return
    print("| task | steps | contact | wrt | rel. error (norm) | median elementwise | share within 5% | |g| |")
    print("|---|---|---|---|---|---|---|---|")
    envs: dict[str, DiffEnv] = {}
    for case in (c for task in tasks for c in cases_for(task)):
        env = envs.setdefault(case.task, DiffEnv(case.task, args.num_envs, device="cpu"))
        for r in case.run(env, coords=args.coords):
            contact = "yes" if case.contact else "no"
            print(
                f"| {case.task} | {case.steps} | {contact} | {r.wrt} | {r.rel_error:.2e} | {r.median_elementwise:.2e} "
                f"| {r.share_within(0.05):.0%} "
                f"| {np.linalg.norm(r.numeric):.3g} |"
            )


if __name__ == "__main__":
    main()
