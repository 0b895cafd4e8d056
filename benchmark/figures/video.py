"""``make video RUN=<run dir> [ENVS=4] [EPISODES=1]``: what a trained policy does.

The run's newest checkpoint acts with its mean action (deterministic) in ``ENVS`` fresh envs, one
episode each by default. Every frame tiles the envs; each tile shows the learner's own view (its newest
rendered frame, for a pixel learner) beside a larger third-person view (Newton's ray tracer, the task's
camera), with the step and the running return drawn on it. Written beside each other in
``<run dir>/video/``: a VP9 WebM and an H.264 MP4 (imageio with ``imageio-ffmpeg``, whose wheel carries
its own ffmpeg) and a PNG poster (the middle frame).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from benchmark.build import make_env, restore_learner
from benchmark.config import ConfigError, check_device
from benchmark.evaluate import rollout
from benchmark.figures.render_views import grid, to_uint8
from envs.render import make_renderer

VIEW = 192  # pixels of the third-person view (and of the learner's view, scaled up)
FPS = 30
MAX_FRAMES = 300  # frames kept per video: a few hundred KB


def _tile(learner_view: np.ndarray | None, third: np.ndarray, label: str) -> Image.Image:
    """One env's tile: the learner's view (scaled up, nearest) beside the third-person view, labelled."""
    parts = [Image.fromarray(third)]
    if learner_view is not None:
        parts.insert(0, Image.fromarray(learner_view).resize((VIEW, VIEW), Image.NEAREST))
    tile = Image.new("RGB", (VIEW * len(parts), VIEW))
    for k, part in enumerate(parts):
        tile.paste(part, (k * VIEW, 0))
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, tile.width, 14), fill=(0, 0, 0))
    draw.text((4, 1), label, fill=(255, 255, 255))
    return tile


@torch.no_grad()
def record(run_dir: Path, num_envs: int = 4, episodes: int = 1, device: str = "cpu",
           max_frames: int = MAX_FRAMES) -> list[np.ndarray]:  # fmt: skip
    """The frames of ``episodes`` deterministic episodes per env (envs that finish early hold their last
    frame), every k-th step so that at most ``max_frames`` remain (and the last step)."""
    learner, cfg, _ = restore_learner(run_dir, torch.device(device))
    env = make_env(cfg, num_envs, torch.device(device), cfg.seed + 20_000, differentiable=False)
    physics = env.env if hasattr(env, "env") else env  # a pixel env wraps the physics
    camera = make_renderer("newton", physics.task, num_envs, VIEW, VIEW, physics.device)
    returns = torch.zeros(num_envs, device=physics.device)
    steps = env.episode_length * episodes
    stride = max(1, -(-steps // max_frames))
    frames, last = [], [None] * num_envs
    for step in rollout(learner, env, deterministic=True, episodes=episodes):
        returns += torch.where(step.counting, step.reward, torch.zeros_like(step.reward))
        if step.index % stride and step.index != steps - 1 and not step.ended.any():
            continue  # between kept frames, unless an episode ends here: its last frame is shown
        third = to_uint8(camera.render(step.info["body_q_before_reset"]))  # the pose each env ended the step in
        seen = step.info["obs_before_reset"]
        own = to_uint8(seen[:, -3:]) if seen.dim() == 4 else None
        for k in np.flatnonzero(step.counting.cpu().numpy()):
            label = f"env {k}  step {step.index + 1}  return {returns[k]:.0f}"
            last[k] = _tile(None if own is None else own[k], third[k], label)
        frames.append(grid(np.stack([np.asarray(tile) for tile in last]), columns=min(2, num_envs)))
    return frames


def write(frames: list[np.ndarray], out: Path) -> list[Path]:
    """``policy.webm`` (VP9), ``policy.mp4`` (H.264) and ``policy.png`` (the middle frame) in ``out``."""
    import imageio.v2 as imageio

    try:
        import imageio_ffmpeg  # noqa: F401 (imageio's ffmpeg plugin needs it)
    except ImportError:
        raise ConfigError("videos need imageio-ffmpeg: pip install 'dva-bench[video]' (or imageio-ffmpeg)") from None
    if out.is_symlink() or any((out / name).is_symlink() for name in ("policy.webm", "policy.mp4", "policy.png")):
        raise ConfigError(f"{out} or a file in it is a symlink: the video is written inside the run only")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, codec in (("policy.webm", "libvpx-vp9"), ("policy.mp4", "libx264")):
        path = out / name
        with imageio.get_writer(path, fps=FPS, codec=codec, quality=None, bitrate="400k", macro_block_size=16,
                                pixelformat="yuv420p", ffmpeg_log_level="error") as writer:  # fmt: skip
            for frame in frames:
                writer.append_data(frame)
        written.append(path)
    poster = out / "policy.png"
    imageio.imwrite(poster, frames[len(frames) // 2])
    return [*written, poster]


def film(run: Path, frames: int = 150) -> None:
    """A short video of a finished run's policy to ship with it (a campaign films each cell it publishes);
    skipped, with one line, where imageio-ffmpeg is missing or the run has no checkpoint (a failed run
    may not), and kept where the run already has one."""
    if (run / "video" / "policy.webm").exists():
        return
    try:
        write(record(run, num_envs=4, max_frames=frames), run / "video")
    except ConfigError as error:
        print(f"note: {run.name} is published without a video: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run directory with checkpoints (results/<run>/)")
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index> (auto: cuda when there is one)")
    args = parser.parse_args(argv)
    try:
        if args.envs < 1 or args.episodes < 1:
            raise ConfigError(f"--envs {args.envs} --episodes {args.episodes}: both must be at least 1")
        if not (args.run / "config.yaml").exists():
            raise ConfigError(f"{args.run} is not a run directory (no config.yaml); give results/<run>/")
        check_device(args.device)
        paths = write(record(args.run, args.envs, args.episodes, args.device), args.run / "video")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for path in paths:
        print(f"{path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
