"""The floors every return is read against: measured by running the task, stored per task, looked up."""

import numpy as np
import pandas as pd
import pytest

from benchmark import floors
from envs.tasks import registry


def test_the_zero_action_and_random_floors_of_the_cartpole_are_measured_stored_and_looked_up(tmp_path):
    """The zero action leaves the pole hanging and the cart near the middle: every episode scores near the
    cartpole's known ~2118 of 2400 (the start is randomised a little); uniformly random pushes drive the
    cart off the rail in many episodes, far below it."""
    zero = floors.policy_returns("cartpole", "zero", 1, episodes=4)
    assert zero.std() < 50 and 2000 < zero.mean() < 2200
    random = floors.policy_returns("cartpole", "random", 1, episodes=8)
    assert random.std() > 0 and random.mean() < zero.mean() - 500
    assert np.array_equal(random, floors.policy_returns("cartpole", "random", 1, episodes=8))  # fixed seeds

    other = pd.DataFrame({"task": "hopper", "task_version": registry()["hopper"].version, "policy": ["random"],
                          "action_repeat": [1], "episodes": 4, "mean": [12.0], "std": 0, "min": 0,
                          "max": 0})  # fmt: skip
    floors.store(other, tmp_path)
    floors.store(floors.measure(["cartpole"], episodes=2), tmp_path)  # replaces cartpole's rows, keeps the hopper's
    assert floors.lookup("hopper", "random", 1, tmp_path) == 12.0
    assert floors.lookup("cartpole", "zero", 2, tmp_path) == pytest.approx(
        floors.policy_returns("cartpole", "zero", 2, episodes=2).mean(), abs=0.01
    )
    assert floors.lookup("ant", "zero", 1, tmp_path) is None
    wide = floors.wide(floors.load(tmp_path)).set_index(["task", "action_repeat"])
    assert wide.loc[("cartpole", 1), "zero_return"] == floors.lookup("cartpole", "zero", 1, tmp_path)
    runs = pd.DataFrame({"task": ["cartpole", "ant", "hopper"], "action_repeat": [2, 1, 2]})
    assert floors.unmeasured(runs, floors.wide(floors.load(tmp_path))) == ["ant", "hopper"]


def test_floors_of_an_older_task_version_are_not_read(tmp_path):
    stale = pd.DataFrame({"task": "cartpole", "task_version": registry()["cartpole"].version - 1,
                          "policy": ["zero"], "action_repeat": [1], "episodes": 4, "mean": [5.0], "std": 0,
                          "min": 0, "max": 0})  # fmt: skip
    floors.store(stale, tmp_path)
    assert floors.load(tmp_path).empty and floors.lookup("cartpole", "zero", 1, tmp_path) is None
