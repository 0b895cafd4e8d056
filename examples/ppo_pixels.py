"""A minimal PPO on the suite's pixel observations, in a plain gymnasium loop (docs/gymnasium.md).

    python examples/ppo_pixels.py --env-id DVaBench/Hopper-v2 --minutes 2

One batched env from ``gymnasium.make_vec`` (frame stacks as a pixel learner sees them, torch tensors in
and out), a small CNN actor-critic, GAE and the clipped objective. Episodes end the CleanRL way: no
bootstrap past a termination or a truncation. It prints one line per iteration.
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import torch
from torch import nn

import envs  # noqa: F401  (registers the DVaBench ids)


class ActorCritic(nn.Module):
    def __init__(self, obs_shape: tuple[int, ...], act_dim: int) -> None:
        super().__init__()
        channels, height, width = obs_shape
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 32, 4, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2), nn.ReLU(),
            nn.Flatten(),
        )  # fmt: skip
        with torch.no_grad():
            features = self.encoder(torch.zeros(1, channels, height, width)).shape[1]
        self.actor = nn.Sequential(nn.Linear(features, 128), nn.Tanh(), nn.Linear(128, act_dim))
        self.critic = nn.Sequential(nn.Linear(features, 128), nn.Tanh(), nn.Linear(128, 1))
        self.log_std = nn.Parameter(torch.full((act_dim,), -0.5))

    def forward(self, obs: torch.Tensor) -> tuple[torch.distributions.Normal, torch.Tensor]:
        h = self.encoder(obs.float() / 255.0)
        return torch.distributions.Normal(self.actor(h), self.log_std.exp()), self.critic(h).squeeze(-1)


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="DVaBench/Hopper-v2")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--rollout", type=int, default=64, help="steps per env between updates")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--iterations", type=int, default=None, help="stop after this many (default: the clock)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)

    env = gymnasium.make_vec(args.env_id, num_envs=args.num_envs, obs_mode="rgb", image_size=args.image_size,
                             autoreset_mode="same_step", torch_io=True, seed=args.seed)  # fmt: skip
    agent = ActorCritic(env.single_observation_space.shape, env.single_action_space.shape[0]).to(env.device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-4)
    gamma, lam, clip, epochs, minibatches = 0.99, 0.95, 0.2, 4, 4

    obs, _ = env.reset(seed=args.seed)
    running = torch.zeros(args.num_envs, device=env.device)
    start, iteration, returns_per_iteration = time.perf_counter(), 0, []
    while (time.perf_counter() - start) / 60 < args.minutes and iteration != args.iterations:
        # ---- rollout
        batch = {key: [] for key in ("obs", "action", "log_prob", "value", "reward", "done")}
        finished = []
        for _ in range(args.rollout):
            with torch.no_grad():
                dist, value = agent(obs)
                action = dist.sample()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated | truncated
            running += reward
            finished += running[done].tolist()
            running[done] = 0.0
            for key, item in zip(batch, (obs, action, dist.log_prob(action).sum(-1), value, reward, done), strict=True):
                batch[key].append(item)
            obs = next_obs
        data = {key: torch.stack(items) for key, items in batch.items()}  # (T, N, ...)

        # ---- GAE, no bootstrap across an episode's end
        with torch.no_grad():
            next_value = agent(obs)[1]
        advantages, gae = torch.zeros_like(data["reward"]), torch.zeros_like(next_value)
        for t in reversed(range(args.rollout)):
            not_done = (~data["done"][t]).float()
            value_after = next_value if t == args.rollout - 1 else data["value"][t + 1]
            delta = data["reward"][t] + gamma * value_after * not_done - data["value"][t]
            gae = delta + gamma * lam * not_done * gae
            advantages[t] = gae
        targets = advantages + data["value"]

        # ---- clipped policy and value updates on shuffled minibatches
        flat = {key: value.flatten(0, 1) for key, value in {**data, "advantage": advantages, "target": targets}.items()}
        size = len(flat["reward"])
        for _ in range(epochs):
            for index in torch.randperm(size, device=env.device).chunk(minibatches):
                dist, value = agent(flat["obs"][index])
                ratio = (dist.log_prob(flat["action"][index]).sum(-1) - flat["log_prob"][index]).exp()
                advantage = flat["advantage"][index]
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                policy_loss = -torch.minimum(ratio * advantage, ratio.clamp(1 - clip, 1 + clip) * advantage).mean()
                value_loss = 0.5 * (value - flat["target"][index]).pow(2).mean()
                optimizer.zero_grad()
                (policy_loss + 0.5 * value_loss).backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()

        iteration += 1
        mean = sum(finished) / len(finished) if finished else float("nan")
        returns_per_iteration.append(mean)
        steps = iteration * args.rollout * args.num_envs
        print(f"iteration {iteration:3d}  steps {steps:7d}  episodes {len(finished):3d}  return {mean:8.1f}  "
              f"{steps / (time.perf_counter() - start):6.0f} steps/s", flush=True)  # fmt: skip
    return returns_per_iteration


if __name__ == "__main__":
    main()
