"""GPU-parallel differentiable envs on Newton: ``DiffEnv(task, num_envs)``; tasks in ``envs/tasks/``.

``DVA_DETERMINISTIC=1`` in the environment (``make bench DETERMINISTIC=1``) makes GPU runs repeat bit for
bit: Warp's run-to-run mode orders the float atomics of its kernels (the contact kernel's, every
adjoint's), and torch uses deterministic algorithms without TF32. Warp takes the mode when a kernel
module is defined, so it is set here, before Newton is imported. On a CPU runs repeat without it.
"""

import os
import sys


def _deterministic_from_environment() -> None:
    if os.environ.get("DVA_DETERMINISTIC", "0") in ("0", ""):
        return
    import torch
    import warp as wp

    if "newton" in sys.modules:
        print("warning: DVA_DETERMINISTIC=1 came after Newton was imported: its kernels keep unordered atomics; "
              "import envs first", file=sys.stderr)  # fmt: skip
    wp.config.deterministic = wp.DeterministicMode.RUN_TO_RUN
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for repeatable GEMMs
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


_deterministic_from_environment()

from envs.core import DiffEnv, Env, cpu_torch_on_gpu_host, cuda_problem, default_device  # noqa: E402
from envs.gym_adapter import register_tasks  # noqa: E402
from envs.tasks import get_task, registry  # noqa: E402

register_tasks()  # gymnasium.make("DVaBench/Hopper-v2") and make_vec, after `import envs`

__all__ = ["DiffEnv", "Env", "cpu_torch_on_gpu_host", "cuda_problem", "default_device", "get_task", "registry"]
