"""The batched, differentiable env every learner uses.

State lives in torch tensors (``joint_q``, ``joint_qd``) that carry the autograd graph from step to step;
:meth:`DiffEnv.cut_graph` detaches them between SHAC windows. Stepping is differentiable whenever torch
records a graph through the actions or the state, and takes the cheaper tape-free path otherwise (under
``torch.no_grad()``, or when built with ``differentiable=False``).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Protocol, runtime_checkable

import newton
import torch

from envs.physics import Simulation, blown_up, warp_device
from envs.tasks import get_task
from envs.tasks.base import Task

MAX_ENVS = 2**16  # far above any GPU's envs; a typo such as num_envs=1e9 must not allocate first


@runtime_checkable
class Env(Protocol):
    """What a learner may use of an env: :class:`DiffEnv` (observations are states) and
    :class:`~envs.pixels.PixelEnv` (frame stacks of a ``DiffEnv``, its state in ``info["state"]``) are
    both one. ``obs_shape`` tells them apart: ``(obs_dim,)`` or ``(3 * frames, H, W)``."""

    task: Task
    num_envs: int
    act_dim: int
    state_dim: int
    obs_shape: tuple[int, ...]
    action_repeat: int
    episode_length: int
    device: torch.device

    def reset(self, seed: int | None = None) -> torch.Tensor: ...
    def step(self, actions: torch.Tensor) -> tuple: ...
    def state_observation(self) -> torch.Tensor: ...
    def cut_graph(self) -> None: ...
    def snapshot(self) -> dict: ...
    def restore(self, snapshot: dict) -> None: ...


def branch_needed(mask: torch.Tensor) -> bool:
    """Whether to run a branch that only changes the rows set in ``mask`` (and leaves the others bit for bit).

    On the CPU asking is free, and skipping saves the branch's work. On a GPU the answer would make the
    host wait for the device once per step, so the branch always runs: it is a no-op where nothing is set.
    """
    return mask.device.type != "cpu" or bool(mask.any())


def default_device() -> torch.device:
    """The first CUDA GPU when torch and Warp both see one, else the CPU (the runner refuses a GPU that
    only torch sees, with the fix: :func:`cuda_problem`)."""
    return torch.device("cuda" if torch.cuda.is_available() and cuda_problem() is None else "cpu")


def cuda_problem() -> str | None:
    """Why Warp cannot run on the CUDA GPU torch sees (None when it can, or when there is none)."""
    if not torch.cuda.is_available():
        return None
    import warp as wp

    if wp.get_cuda_device_count() > 0:
        return None
    return (f"torch sees {torch.cuda.device_count()} CUDA GPU(s) but Warp {wp.__version__} registers none: PyPI's "
            "warp-lang wheels are built for CUDA 13 and need an NVIDIA driver R580 or newer (nvidia-smi shows "
            "yours) and a GPU of compute capability 7.5+; update the driver, or install a warp-lang build for "
            "your CUDA from NVIDIA's index, or use device=cpu")  # fmt: skip


def cpu_torch_on_gpu_host() -> str | None:
    """A one-line warning when ``nvidia-smi`` lists a GPU but torch is a CPU-only build (installed on a
    machine without one, say): ``device=auto`` would then quietly run on the CPU."""
    if torch.version.cuda is not None or shutil.which("nvidia-smi") is None:
        return None
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return None
    return (f"warning: nvidia-smi lists a GPU but torch {torch.__version__} is a CPU-only build, so this runs on "
            "the CPU; `make install GPU=1` installs torch's CUDA build")  # fmt: skip


class DiffEnv:
    """N copies of one task in one Newton model, stepped together on one device.

    ``step(actions)`` returns ``(obs, reward, terminated, truncated, info)``; envs that finish are reset
    in place, and ``info`` carries ``obs_before_reset`` / ``state_before_reset`` (the true last
    observation, for bootstrapping; the same here, images and state with a renderer),
    ``body_q_before_reset`` (the poses those observations saw, for renderers), ``state`` (the
    low-dimensional state observation for critics) and, for envs that finished,
    ``episode_return`` / ``episode_length`` (NaN elsewhere).

    ``contact_law``: ``"dflex"`` (the paper's simulator: contact damping proportional to depth) or
    ``"newton"`` (Newton's penalty law); see ``envs/contact.py``.

    ``action_repeat``: one ``step`` runs that many control steps with the same action (DrQ-v2's and
    CURL's agents act every second control step). Rewards add up to each env's first finished control
    step; a finished env then holds still (its last observation is the finished step's) and resets once,
    at the end. ``episode_length`` and ``progress`` count control steps (the paper's frames).

    ``capture_graphs``: replay each control step as a captured Warp graph (the default; same results,
    without Python's per-launch cost), or launch kernel by kernel (``False``); see ``envs/physics.py``.
    """

    def __init__(
        self,
        task: str | Task,
        num_envs: int,
        device: str | torch.device | None = None,
        seed: int = 0,
        differentiable: bool = True,
        contact_law: str = "dflex",
        action_repeat: int = 1,
        capture_graphs: bool = True,
    ) -> None:
        if action_repeat < 1:
            raise ValueError(f"action_repeat={action_repeat}: must be at least 1")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r}: give a positive whole number of envs")
        self.action_repeat = action_repeat
        self.task = get_task(task) if isinstance(task, str) else task
        self.num_envs = num_envs
        self.device = torch.device(device) if device is not None else default_device()
        self.differentiable = differentiable
        self.obs_dim, self.act_dim = self.task.obs_dim, self.task.act_dim
        self.state_dim, self.obs_shape = self.obs_dim, (self.obs_dim,)
        self.episode_length = self.task.episode_length
        self.dt = self.task.dt

        robot = newton.ModelBuilder()
        self.task.build(robot)
        start_q, start_qd = self.task.start_state(robot)
        scene = newton.ModelBuilder()
        scene.replicate(robot, num_envs)
        if self.task.contact is not None:  # the ground takes the task's material too
            self.task.contact.apply_to(scene.default_shape_cfg)
            scene.add_ground_plane()
        model = scene.finalize(device=warp_device(self.device), requires_grad=True)
        self.sim = Simulation(
            model,
            num_envs,
            self.task.substeps,
            self.task.dt,
            self.device,
            with_contacts=self.task.contact is not None,
            angular_damping=self.task.angular_damping,
            contact_law=contact_law,
            capture_graphs=capture_graphs,
            horizontal_coords=self.task.horizontal_coords,
        )
        dofs, gains = self.task.actuators(model)
        self._actuated_dofs = torch.as_tensor(dofs, device=self.device)
        self._torque_per_action = torch.as_tensor(gains, device=self.device)
        self._start_q = torch.as_tensor(start_q, device=self.device).expand(num_envs, -1)
        self._start_qd = torch.as_tensor(start_qd, device=self.device).expand(num_envs, -1)

        self.seed(seed)
        self.reset()

    # ------------------------------------------------------------------ sizes and seeding
    @property
    def num_bodies(self) -> int:
        return self.sim.num_bodies

    def seed(self, seed: int) -> None:
        if not 0 <= int(seed) < 2**63:
            raise ValueError(f"seed={seed}: give a whole number in [0, 2**63)")
        self._generator = torch.Generator(device=self.device).manual_seed(int(seed))

    # ------------------------------------------------------------------ episodes
    def reset(self, seed: int | None = None, noise: bool = True) -> torch.Tensor:
        """Reset every env (noisy start states unless ``noise=False``); returns the first observation."""
        if seed is not None:
            self.seed(seed)
        n = self.num_envs
        self.joint_q, self.joint_qd = self._start_q.clone(), self._start_qd.clone()
        if noise:
            self.joint_q, self.joint_qd = self.task.perturb(self.joint_q, self.joint_qd, self._generator)
        self.actions = torch.zeros(n, self.act_dim, device=self.device)
        self.progress = torch.zeros(n, dtype=torch.long, device=self.device)
        self.episode_return = torch.zeros(n, device=self.device)
        self._body_q: torch.Tensor | None = None
        return self.state_observation()

    def _reset_where(self, done: torch.Tensor) -> None:
        q0, qd0 = self.task.perturb(self._start_q, self._start_qd, self._generator)
        mask = done[:, None]
        self.joint_q = torch.where(mask, q0, self.joint_q)
        self.joint_qd = torch.where(mask, qd0, self.joint_qd)
        self.actions = torch.where(mask, torch.zeros_like(self.actions), self.actions)
        self.progress = torch.where(done, torch.zeros_like(self.progress), self.progress)
        self.episode_return = torch.where(done, torch.zeros_like(self.episode_return), self.episode_return)
        if self._body_q is not None:
            fresh = self.sim.forward_kinematics(self.joint_q, self.joint_qd)
            self._body_q = torch.where(done[:, None, None], fresh, self._body_q)

    def state_observation(self) -> torch.Tensor:
        """State observation of the current state (what critics see; also the obs of this env)."""
        return self.task.observe(self.joint_q, self.joint_qd, self.actions)

    def torques(self, actions: torch.Tensor) -> torch.Tensor:
        """Generalised forces (N, nqd) of actions in [-1, 1]: each actuated dof's torque per unit action."""
        torque = torch.zeros(actions.shape[0], self.sim.nqd, dtype=actions.dtype, device=actions.device)
        return torque.index_add(1, self._actuated_dofs, actions * self._torque_per_action)

    def step(self, actions: torch.Tensor):
        actions = self._as_actions(actions).clamp(-1.0, 1.0)
        torque = self.torques(actions)
        if not self.differentiable:
            actions = actions.detach()
            torque = torque.detach()
        reward, terminated, truncated = self._control_step(actions, torque, held=None)
        for _ in range(self.action_repeat - 1):
            more, term, trunc = self._control_step(actions, torque, held=terminated | truncated)
            reward, terminated, truncated = reward + more, terminated | term, truncated | trunc
        done = terminated | truncated

        obs = self.state_observation()
        # a blown-up env's last observation is not finite: it reads as zeros. Learners mask it (a terminated
        # env bootstraps nothing), but a mask after a network passes 0 x NaN back, into the actions the
        # observation holds and through the actor's shared weights into every env's update
        last = torch.where(self.invalid_state(obs)[:, None], torch.zeros_like(obs), obs)
        nan = torch.full_like(self.episode_return, float("nan"))
        info: dict[str, Any] = {
            "obs_before_reset": last,
            "state_before_reset": last,
            "body_q_before_reset": self._body_q,
            "episode_return": torch.where(done, self.episode_return, nan),
            "episode_length": torch.where(done, self.progress.float(), nan),
        }
        if branch_needed(done):  # on a GPU the perturbation is drawn every step: its stream differs from the CPU's
            self._reset_where(done)
            obs = self.state_observation()
        info["state"] = obs
        return obs, reward, terminated, truncated, info

    def _as_actions(self, actions) -> torch.Tensor:
        """A (num_envs, act_dim) float32 tensor on the env's device: numpy arrays and other dtypes are
        converted (a tensor keeps its graph); a wrong shape is one clear error, not a kernel's."""
        if not isinstance(actions, torch.Tensor):
            actions = torch.as_tensor(actions)
        expected = (self.num_envs, self.act_dim)
        if actions.shape != expected:
            raise ValueError(
                f"actions of shape {tuple(actions.shape)}: this env takes {expected} (num_envs, act_dim), in [-1, 1]"
            )
        return actions.to(self.device, torch.float32)

    def _control_step(self, actions: torch.Tensor, torque: torch.Tensor, held: torch.Tensor | None):
        """One control step of every env; envs in ``held`` (finished earlier in this agent step) keep
        their state and earn nothing. Returns (reward, terminated, truncated) of this control step."""
        before = None if held is None else (self.joint_q, self.joint_qd, self.body_transforms())
        out = self.sim.step(self.joint_q, self.joint_qd, torque)
        self.joint_q, self.joint_qd, self._body_q = out.joint_q, out.joint_qd, out.body_q
        moving = torch.ones_like(self.progress, dtype=torch.bool) if held is None else ~held
        if held is not None:
            self.joint_q = torch.where(held[:, None], before[0], self.joint_q)
            self.joint_qd = torch.where(held[:, None], before[1], self.joint_qd)
            self._body_q = torch.where(held[:, None, None], before[2], self._body_q)
        self.actions = actions
        self.progress = self.progress + moving.long()

        obs = self.state_observation()
        reward = self.task.reward(self.joint_q, self.joint_qd, actions)
        invalid = self.invalid_state(obs)  # a blown-up simulation earns nothing and ends, as in SHAC's envs
        reward = torch.where(moving & ~invalid, reward, torch.zeros_like(reward))
        terminated = (self.task.terminated(self.joint_q, self.joint_qd) | invalid) & moving
        truncated = (self.progress >= self.episode_length) & ~terminated & moving
        self.episode_return = self.episode_return + reward.detach()
        return reward, terminated, truncated

    def invalid_state(self, obs: torch.Tensor) -> torch.Tensor:
        """(N,) bool: envs whose state blew up (:func:`envs.physics.blown_up`) or whose observation is not
        finite. Such an env's step earns 0 and terminates it (SHAC's dflex envs do the same), so one
        unstable step cannot poison returns and critic targets; its gradient is zero (the physics' backward)."""
        return blown_up(self.joint_q, self.joint_qd) | ~torch.isfinite(obs.detach()).all(-1)

    def cut_graph(self) -> None:
        """Detach the state from the autograd graph (SHAC's ``clear_grad`` / ``initialize_trajectory``)."""
        self.joint_q, self.joint_qd = self.joint_q.detach(), self.joint_qd.detach()
        self.actions = self.actions.detach()
        if self._body_q is not None:
            self._body_q = self._body_q.detach()

    def snapshot(self) -> dict[str, Any]:
        """Everything :meth:`restore` needs to replay from this point (detached copies, RNG state)."""
        fields = ("joint_q", "joint_qd", "actions", "progress", "episode_return", "_body_q")
        snap = {k: None if getattr(self, k) is None else getattr(self, k).detach().clone() for k in fields}
        return {**snap, "generator": self._generator.get_state()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        for key, value in snapshot.items():
            if key == "generator":
                self._generator.set_state(value)
            else:
                setattr(self, key, None if value is None else value.clone())

    # ------------------------------------------------------------------ for renderers
    def body_transforms(self) -> torch.Tensor:
        """(N, bodies, 7) world poses (position, quaternion x y z w) of the current state.

        Differentiable with respect to the state when the state carries a graph.
        """
        if self._body_q is None:  # after a reset: forward kinematics of the current joint state
            self._body_q = self.sim.forward_kinematics(self.joint_q, self.joint_qd)
        return self._body_q
