"""GPU-parallel differentiable envs on Newton: ``DiffEnv(task, num_envs)``; tasks in ``envs/tasks/``."""

from envs.core import DiffEnv, cpu_torch_on_gpu_host, cuda_problem, default_device
from envs.tasks import get_task, registry

__all__ = ["DiffEnv", "cpu_torch_on_gpu_host", "cuda_problem", "default_device", "get_task", "registry"]
