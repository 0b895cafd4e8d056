"""``make gpu-check``: what a first GPU user runs in a minute and pastes into an issue.

Each line is one check with its result: the devices torch and Warp see and the builds installed (torch's
CUDA or CPU wheel, Warp's CUDA toolkit, PyTorch3D's kernels), then on the device the suite would use
(``--device``, default auto): one captured control step with a gradient, one rendered frame, one
PyTorch3D raster, and two identical steps giving identical states. What cannot run here is skipped with
the reason. Exit code 1 when a check failed.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from collections.abc import Callable

import torch

from benchmark.config import ConfigError, check_device
from envs import DiffEnv, cpu_torch_on_gpu_host, cuda_problem, default_device


def _devices() -> str:
    import warp as wp

    gpus = (
        [torch.cuda.get_device_name(k) for k in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    warp_gpus = [str(d) for d in wp.get_cuda_devices()] if wp.get_cuda_device_count() else []
    return (f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'no'}) sees {gpus or 'no GPU'}; "
            f"Warp {wp.__version__} (built for CUDA {'.'.join(map(str, wp.get_cuda_toolkit_version()))}, driver "
            f"{'.'.join(map(str, wp.get_cuda_driver_version())) if wp.get_cuda_device_count() else 'none'}) "
            f"sees {warp_gpus or 'no GPU'}; python {platform.python_version()}")  # fmt: skip


def _problems() -> str:
    found = [p for p in (cuda_problem(), cpu_torch_on_gpu_host()) if p]
    if found:
        raise RuntimeError(" | ".join(found))
    return "none"


def _pytorch3d_build() -> str:
    from envs.render.install_pytorch3d import built_with_cuda, installed_version

    version = installed_version()
    if version is None:
        raise SkipCheck("PyTorch3D is not installed (make pytorch3d)")
    return f"{version}, {'CUDA and CPU' if built_with_cuda() else 'CPU'} kernels"


def _captured_step(device: torch.device) -> str:
    env = DiffEnv("hopper", 4, device=device, seed=0)
    env.reset(seed=0)
    actions = torch.zeros(4, env.act_dim, device=device, requires_grad=True)
    start = time.perf_counter()
    reward = env.step(actions)[1].sum()
    reward.backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    finite = bool(torch.isfinite(actions.grad).all())
    if not finite:
        raise RuntimeError("the action gradient is not finite")
    return f"hopper, 4 envs: step and backward in {time.perf_counter() - start:.2f} s (first: kernels), gradient finite"


def _frame(device: torch.device, backend: str) -> str:
    from envs.render import install_hint, make_renderer

    if (hint := install_hint(backend)) is not None:  # not installed: skipped with its fix (installed but broken fails)
        raise SkipCheck(hint)
    env = DiffEnv("hopper", 2, device=device, seed=0)
    renderer = make_renderer(backend, env.task, 2, 64, 64, device)
    image = renderer.render(env.body_transforms())
    spread = float(image.float().std())
    if spread == 0:
        raise RuntimeError(f"{backend} rendered a flat image")
    return f"{backend}: {tuple(image.shape)} {image.dtype} on {image.device}, pixel spread {spread:.3g}"


def _repeatable(device: torch.device) -> str:
    def two_steps() -> torch.Tensor:
        env = DiffEnv("ant", 4, device=device, seed=3)
        env.reset(seed=3)
        with torch.no_grad():
            for _ in range(2):
                obs = env.step(0.5 * torch.ones(4, env.act_dim, device=device))[0]
        return obs.cpu()

    first, second = two_steps(), two_steps()
    if torch.equal(first, second):
        return "ant, two identical 2-step runs: identical states"
    gap = float((first - second).abs().max())
    hint = "; DETERMINISTIC=1 orders Warp's atomics" if device.type == "cuda" else ""
    raise RuntimeError(f"two identical runs differ by up to {gap:.3g}{hint}")


class SkipCheck(Exception):
    """A check that cannot run here; its message says why."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (the suite's choice), cpu, cuda or cuda:<index>")
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
    except ConfigError as error:
        print(f"error: --device {args.device}: {error}", file=sys.stderr)
        sys.exit(2)
    device = default_device() if args.device == "auto" else torch.device(args.device)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("devices", _devices),
        ("device problems", _problems),
        ("PyTorch3D build", _pytorch3d_build),
        (f"captured step on {device}", lambda: _captured_step(device)),
        (f"frame on {device}", lambda: _frame(device, "newton")),
        (f"PyTorch3D raster on {device}", lambda: _frame(device, "pytorch3d")),
        (f"repeatable on {device}", lambda: _repeatable(device)),
    ]
    failed = 0
    for name, check in checks:
        try:
            print(f"ok    {name}: {check()}", flush=True)
        except SkipCheck as reason:
            print(f"skip  {name}: {reason}", flush=True)
        except Exception as error:  # a check's failure is a result to paste, not the end of the others
            failed += 1
            where = traceback.extract_tb(error.__traceback__)[-1]
            print(f"FAIL  {name}: {type(error).__name__}: {error} ({where.filename}:{where.lineno})", flush=True)
    if device.type == "cpu":
        print("skip  GPU checks: this machine's torch and Warp see no usable GPU (the checks above ran on the CPU)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
