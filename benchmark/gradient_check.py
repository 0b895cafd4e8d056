"""Tape gradients vs central finite differences through the env layer.

``python -m benchmark.gradient_check`` prints the table per task; the tests call :func:`check_task`.
The loss is the window's summed reward (what SHAC differentiates); gradients are taken with respect to
the action sequence and the initial joint velocities, on a random subset of coordinates.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from envs import DiffEnv


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
    def median_elementwise(self) -> float:
        scale = np.abs(self.numeric) + 1e-3 * np.abs(self.numeric).max()
        return float(np.median(np.abs(self.analytic - self.numeric) / scale))


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


def start_state(env: DiffEnv, settle_steps: int, q_offset: dict[int, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """A state after ``settle_steps`` zero-action steps (feet on the ground for contact tasks), then
    shifted by ``q_offset`` (coordinate -> offset): e.g. a root lifted 2 m runs the window in the air."""
    env.reset()
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
) -> list[GradCheck]:
    """Compare tape and finite-difference gradients of the window reward on ``coords`` random coordinates."""
    rng = np.random.default_rng(seed)
    q0, qd0 = start_state(env, settle_steps, q_offset or {})
    actions = 0.3 * torch.from_numpy(rng.uniform(-1, 1, (steps, env.num_envs, env.act_dim)).astype(np.float32))
    actions = actions.to(env.device)

    a_var, qd_var = actions.clone().requires_grad_(True), qd0.clone().requires_grad_(True)
    env.cut_graph()
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
                with torch.no_grad():
                    args = (q0, bumped, actions) if name == "initial velocity" else (q0, qd0, bumped)
                    values.append(float(_window_loss(env, *args)))
            fd.append((values[0] - values[1]) / (2 * eps))
        return GradCheck(env.task.name, steps, name, analytic.reshape(-1)[picks].cpu().numpy(), np.array(fd))

    return [numeric(actions, a_var.grad, "actions"), numeric(qd0, qd_var.grad, "initial velocity")]


# Windows used in the tests and the printed table: (task, steps, settle steps, q offsets, contact).
# Cartpole starts 1 rad off hanging-down: the reward's wrapped angle has a kink at exactly down.
CASES = [
    ("cartpole", 8, 0, {1: -1.0}, False),
    ("hopper", 8, 15, {}, True),
    ("ant", 8, 15, {}, True),
    ("humanoid", 4, 5, {}, True),
    ("ant", 16, 0, {2: 2.0}, False),  # falling through the air: the contact-free multi-step case
    ("humanoid", 16, 0, {2: 2.0}, False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--coords", type=int, default=12)
    args = parser.parse_args()
    print("| task | steps | contact | wrt | rel. error (norm) | median elementwise | |g| |")
    print("|---|---|---|---|---|---|---|")
    envs: dict[str, DiffEnv] = {}
    for task, steps, settle, offsets, contact in CASES:
        env = envs.setdefault(task, DiffEnv(task, args.num_envs, device="cpu"))
        for r in check_task(env, steps, settle, offsets, coords=args.coords):
            contact = "yes" if contact else "no"
            print(
                f"| {task} | {steps} | {contact} | {r.wrt} | {r.rel_error:.2e} | {r.median_elementwise:.2e} "
                f"| {np.linalg.norm(r.numeric):.3g} |"
            )


if __name__ == "__main__":
    main()
