"""State-to-visual DAgger: the dataset, the teacher's labels, beta, early stop, the teacher from the runner."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from algorithms.base import Learner
from algorithms.dagger import DAgger, DAggerConfig, FIFODataset
from benchmark.build import restore_learner
from benchmark.config import ConfigError, load_config
from benchmark.evaluate import evaluate
from benchmark.results import METRIC_COLUMNS, final_training
from benchmark.run import run
from envs import DiffEnv
from envs.pixels import PixelEnv


def teacher_action(state: torch.Tensor) -> torch.Tensor:
    """The stub teacher's a = f(state): any fixed function of the whole state."""
    return torch.tanh(state @ torch.linspace(-1.0, 1.0, state.shape[-1])[:, None])


class StubTeacher(Learner):
    name = "stub_teacher"

    def __init__(self) -> None:
        pass

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return teacher_action(obs)


class Recorder:
    """A pixel env that records each observation with the state at the same time, and each action."""

    def __init__(self, env: PixelEnv) -> None:
        self.env, self.seen, self.actions = env, [], []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, seed=None):
        obs = self.env.reset(seed)
        self.seen.append((obs.clone(), self.env.state_observation().clone()))
        return obs

    def step(self, actions):
        self.actions.append(actions.clone())
        out = self.env.step(actions)
        self.seen.append((out[0].clone(), out[4]["state"].clone()))
        return out


@pytest.fixture
def cartpole_pixels():
    def make(num_envs: int = 3) -> Recorder:
        return Recorder(PixelEnv(DiffEnv("cartpole", num_envs, device="cpu", seed=0, differentiable=False), "newton",
                                 size=16))  # fmt: skip

    return make


def student(env, **overrides) -> DAgger:
    settings = {"horizon": 5, "dataset_size": 50, "learning_starts": 10**9, "batch_size": 8, **overrides}
    return DAgger(env, DAggerConfig(**settings), teacher=StubTeacher())


def test_fifo_dataset_keeps_the_newest_pairs_oldest_first():
    data = FIFODataset(5, (1,), torch.uint8, 1, torch.device("cpu"))
    for start in (0, 3, 6):
        data.add(torch.arange(start, start + 3, dtype=torch.uint8)[:, None], torch.arange(start, start + 3)[:, None])
    obs, label = data.oldest_first()
    assert obs[:, 0].tolist() == [4, 5, 6, 7, 8] and label[:, 0].tolist() == [4.0, 5.0, 6.0, 7.0, 8.0]
    data.add(torch.arange(10, 17, dtype=torch.uint8)[:, None], torch.zeros(7, 1))  # more than it holds
    assert data.oldest_first()[0][:, 0].tolist() == [12, 13, 14, 15, 16] and len(data) == 5


def test_minibatches_hold_distinct_pairs():
    """D.Va draws each minibatch as the head of a fresh permutation: no pair twice in one batch."""
    data = FIFODataset(10, (1,), torch.uint8, 1, torch.device("cpu"))
    data.add(torch.arange(10, dtype=torch.uint8)[:, None], torch.zeros(10, 1))
    torch.manual_seed(0)
    for _ in range(50):  # with replacement, 50 batches of 8 of 10 would repeat a pair almost surely
        obs, _ = data.sample(8)
        assert len(set(obs.flatten().tolist())) == 8


@pytest.mark.parametrize("loss, orthogonal", [("mse", True), ("nll", False)])
def test_the_deterministic_student_starts_orthogonal_like_dvas(cartpole_pixels, loss, orthogonal):
    """ActorDeterministicMLP (mse) is orthogonal with gain sqrt(2) and zero biases; the stochastic
    student (nll, cartpole) keeps PyTorch's default, as D.Va's ActorStochasticMLP."""
    torch.manual_seed(0)
    agent = student(cartpole_pixels(), loss=loss, actor_hidden=[16, 8])
    for layer in [m for m in agent.actor.mean if isinstance(m, torch.nn.Linear)]:
        w = layer.weight.detach()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        is_orthogonal = torch.allclose(gram, 2 * torch.eye(gram.shape[0]), atol=1e-4) and bool(
            torch.all(layer.bias == 0)
        )
        assert is_orthogonal == orthogonal


@pytest.mark.parametrize("iterations, expected", [(2, 30), (4, 50)])  # k x N x h = 15 k pairs, capacity 50
def test_dataset_holds_every_visited_state_with_the_teachers_label_in_fifo_order(cartpole_pixels, iterations, expected):
    env = cartpole_pixels()
    agent = student(env)
    for _ in range(iterations):
        agent.train_iteration()
    obs, label = agent.dataset.oldest_first()
    assert len(agent.dataset) == expected
    visited = env.seen[: iterations * 5]  # every observation the student acted on; the last one is next segment's
    want_obs = torch.cat([o for o, _ in visited])[-expected:]
    want_label = teacher_action(torch.cat([s for _, s in visited]))[-expected:]
    assert torch.equal(obs, want_obs)
    torch.testing.assert_close(label, want_label)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_beta_one_executes_the_teacher_and_beta_zero_the_student(cartpole_pixels, beta):
    env = cartpole_pixels()
    agent = student(env, beta=beta)
    agent.train_iteration()
    for (obs, state), action in zip(env.seen, env.actions, strict=False):
        expected = teacher_action(state) if beta == 1.0 else agent.act(obs)
        torch.testing.assert_close(action, expected)
    assert not torch.allclose(teacher_action(env.seen[0][1]), agent.act(env.seen[0][0]))  # the two differ


def test_the_early_stop_cuts_the_updates(cartpole_pixels):
    counts = {}
    for stop_loss in (1e9, -1e9):  # the first minibatch passes / none ever does
        agent = student(cartpole_pixels(), loss="mse", learning_starts=15, max_updates=7, stop_loss=stop_loss)
        counts[stop_loss] = [agent.train_iteration()["bc_updates"] for _ in range(2)]
    assert counts == {1e9: [1, 1], -1e9: [7, 7]}


def test_the_nll_loss_is_the_gaussian_negative_log_likelihood_of_the_pre_tanh_label(cartpole_pixels):
    agent = student(cartpole_pixels(), loss="nll")
    obs, label = torch.zeros(4, *agent.env.obs_shape, dtype=torch.uint8), torch.full((4, 1), 0.5)
    mean, std = agent.actor.mean(agent.encoder(obs)), agent.actor.log_std.exp()
    by_hand = ((torch.atanh(label) - mean) / std) ** 2 / 2 + torch.log(std) + 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(agent.imitation_loss(obs, label), by_hand.sum(-1).mean())


def test_refuses_state_observations_and_a_missing_or_pixel_teacher():
    with pytest.raises(ValueError, match="learns from pixels"):
        DAgger(DiffEnv("cartpole", 2, device="cpu"), DAggerConfig(), teacher=StubTeacher())
    with pytest.raises(ConfigError, match="set teacher="):
        load_config("dagger", "cartpole", ["teacher=null"])
    with pytest.raises(ConfigError, match="learns from pixels"):
        load_config("dagger", "cartpole", ["teacher=dva"])
    with pytest.raises(ConfigError, match="takes no teacher"):
        load_config("shac", "cartpole", ["teacher=shac"])
    with pytest.raises(ConfigError, match="teacher shac: unknown config key 'horizn'"):
        load_config("dagger", "cartpole", ["teacher_overrides=[horizn=3]"])


TINY_TEACHER = "teacher_overrides=[iterations=2,num_envs=2,horizon=4,eval_envs=2,eval_max_steps=4,checkpoint_every=1]"


def tiny_student(task: str, tmp_path, name: str, *extra: str) -> list[str]:
    return ["preset=cpu", "num_envs=2", "image_size=16", "horizon=3", "eval_envs=2", "eval_max_steps=4",
            "learning_starts=7", "max_updates=2", "batch_size=4", "dataset_size=100", "checkpoint_every=1",
            TINY_TEACHER, f"results_dir={tmp_path}", f"run_name={name}", *extra]  # fmt: skip


def test_a_students_budget_counts_its_own_steps_from_its_teachers_end(tmp_path):
    """The teacher's 16 env steps come first on the student's clock; a 12-step budget then buys the
    student its own 2 iterations of 6 steps, as any learner's would (counted from 0 it would stop at 1)."""
    out = run(
        load_config("dagger", "hopper", [*tiny_student("hopper", tmp_path, "s"), "budget=12steps"]), progress=False
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher_env_steps"] == 16 and summary["iterations"] == 2 and summary["env_steps"] == 28


def test_runs_after_its_teacher_resumes_and_writes_results(tmp_path):
    """On the hopper; every task's pixel env is checked once, with D.Va (tests/algorithms/test_apg_family.py)."""
    task = "hopper"
    overrides = tiny_student(task, tmp_path, "student")
    out = run(load_config("dagger", task, [*overrides, "iterations=2"]), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    teacher = json.loads((out / "teacher" / "summary.json").read_text())
    assert summary["status"] == "complete" and teacher["status"] == "complete" and teacher["role"] == "teacher"
    assert summary["teacher_run"] == str(out / "teacher") and teacher["iterations"] == 2
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns[: len(METRIC_COLUMNS)]) == METRIC_COLUMNS
    # the student's clock starts where the teacher's stopped: 2 x 4 teacher steps per env, then 2 x 3
    assert teacher["env_steps"] == 16 and metrics["env_steps"].tolist() == [16 + 6, 16 + 12]
    assert metrics["wall_clock"].iloc[0] > teacher["wall_clock"] and summary["env_steps"] == 28
    assert metrics["bc_updates"].tolist() == [0, 2]  # 6 pairs per iteration, learning starts at 7

    (out / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))  # as if preempted
    teacher_metrics = (out / "teacher" / "metrics.csv").read_text()
    resumed = run(load_config("dagger", task, [*overrides, "iterations=3"]), progress=False)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["resumed"] == 1 and summary["env_steps"] == 34
    assert (out / "teacher" / "metrics.csv").read_text() == teacher_metrics  # the finished teacher is reused
    learner, _, _ = restore_learner(out, torch.device("cpu"))  # benchmark.evaluate's path: with its teacher
    assert isinstance(learner, DAgger) and learner.iteration == 3


def test_a_finished_teacher_elsewhere_is_reused_not_retrained(tmp_path):
    first = run(load_config("dagger", "cartpole", [*tiny_student("cartpole", tmp_path, "a"), "iterations=1"]),
                progress=False)  # fmt: skip
    before = (first / "teacher" / "metrics.csv").read_text()
    reuse = [f"teacher_run={first / 'teacher'}", "teacher_overrides=[]", "seed=5"]  # its own config stands
    second = run(load_config("dagger", "cartpole", [*tiny_student("cartpole", tmp_path, "b"), "iterations=1", *reuse]),
                 progress=False)  # fmt: skip
    assert (first / "teacher" / "metrics.csv").read_text() == before and not (second / "teacher").exists()
    summary = json.loads((second / "summary.json").read_text())
    assert summary["teacher_run"] == str(first / "teacher") and summary["env_steps"] == 16 + 6


def test_a_short_shac_teacher_is_imitated_and_the_student_improves(tmp_path):
    """A real state SHAC cartpole teacher (15 iterations): over 25 iterations the student's on-policy
    imitation error falls at least 5x and its return rises."""
    teacher = "teacher_overrides=[iterations=15,num_envs=16,eval_envs=4]"
    overrides = ["preset=cpu", "num_envs=16", "image_size=24", "horizon=16", "eval_envs=8", "eval_max_steps=120",
                 "learning_starts=256", "max_updates=50", "stop_loss=-1e9", "batch_size=64", "dataset_size=8192",
                 "loss=mse", teacher, f"results_dir={tmp_path}"]  # fmt: skip
    cfg = load_config("dagger", "cartpole", [*overrides, "iterations=25"])
    out = run(cfg, progress=False)
    metrics = pd.read_csv(out / "metrics.csv")
    error = metrics["imitation_error"]
    assert error.iloc[-3:].mean() * 5 < error.iloc[:3].mean(), error.round(3).tolist()
    trained, _, _ = restore_learner(out, torch.device("cpu"))
    untrained = DAgger(trained.env, trained.config, trained.teacher)  # the same student before any update
    start, _ = evaluate(untrained, cfg, torch.device("cpu"))
    end, _ = evaluate(trained, cfg, torch.device("cpu"))
    assert end > start + 300, (start, end)


def test_a_students_final_training_return_is_over_the_last_tenth_of_its_own_time(tmp_path):
    """The student's clock starts at its teacher's 900 s; it trains 100 s, returns 0 until 990 s and 50
    after: the final window is 990-1000 s (mean 50), not the last tenth of teacher plus student (all of it)."""
    (tmp_path / "summary.json").write_text(json.dumps({"status": "complete", "teacher_wall_clock": 900.0}))
    clock = np.arange(901.0, 1001.0)
    pd.DataFrame(
        {
            "iteration": np.arange(1, 101),
            "wall_clock": clock,
            "env_steps": np.arange(1, 101) * 64,
            "train_return": np.where(clock >= 990, 50.0, 0.0),
        }
    ).to_csv(tmp_path / "metrics.csv", index=False)
    assert final_training(tmp_path)["train_return"] == pytest.approx(50.0)
