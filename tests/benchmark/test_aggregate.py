"""The aggregate statistics by hand: IQM, optimality gap, probability of improvement, the normalisation,
and a bootstrap that resamples within tasks and repeats for a seed."""

import numpy as np
import pandas as pd
import pytest

from benchmark.figures import aggregate


def test_iqm_and_the_optimality_gap_by_hand():
    assert aggregate.iqm(np.arange(8.0)) == pytest.approx(3.5)  # the middle half: 2, 3, 4, 5
    assert aggregate.optimality_gap(np.array([0.5, 1.2, 0.8])) == pytest.approx((0.5 + 0.0 + 0.2) / 3)


def test_the_median_is_rliables_median_of_the_per_task_means_and_the_iqm_pools_every_run():
    """Three tasks: per-task means 0.2, 0.5 and 3.0. rliable's median is 0.5 (the middle task mean); the
    median of the nine pooled runs would be 0.4. Its IQM trims the pooled runs: the middle half of nine."""
    scores = {"a": np.array([0.1, 0.2, 0.3]), "b": np.array([0.4, 0.5, 0.6]), "c": np.array([2.0, 3.0, 4.0])}
    assert aggregate.STATISTICS["median"](scores) == pytest.approx(0.5)
    assert aggregate.STATISTICS["mean"](scores) == pytest.approx((0.2 + 0.5 + 3.0) / 3)
    assert aggregate.STATISTICS["IQM"](scores) == pytest.approx(0.76)  # 0.3 .. 2.0
    assert aggregate.STATISTICS["optimality gap"](scores) == pytest.approx((0.9 + 0.8 + 0.7 + 0.6 + 0.5 + 0.4) / 9)


def test_the_probability_of_improvement_counts_pairs_ties_as_half_and_averages_tasks():
    x = {"a": np.array([3.0, 4.0]), "b": np.array([1.0])}
    y = {"a": np.array([1.0, 4.0]), "b": np.array([2.0])}
    # task a: 3>1, 3<4, 4>1, 4=4 -> 2.5 of 4; task b: 1<2 -> 0
    assert aggregate.probability_of_improvement(x, y) == pytest.approx((2.5 / 4 + 0.0) / 2)


def test_scores_are_normalised_by_the_random_policy_at_the_runs_action_repeat():
    cells = pd.DataFrame({"task": ["cartpole", "cartpole"], "algo": ["dva", "drqv2"], "action_repeat": [1, 2],
                          "train_return": [1850.0, 263.0 + 0.5 * (1850 - 263)]})  # fmt: skip
    floors = pd.DataFrame({"task": ["cartpole", "cartpole"], "action_repeat": [1, 2], "random_return": [930.0, 263.0]})
    scored = aggregate.normalised_scores(cells, floors, {"cartpole": 1850})
    assert scored["score"].tolist() == pytest.approx([1.0, 0.5])


def test_the_bootstrap_resamples_within_tasks_and_repeats_for_a_seed():
    """Half the runs on a task scoring 1, half on another scoring 0: resampling within tasks keeps each
    task's weight, so every resample's mean is 0.5 (resampling the pool would not)."""
    scores = {"dva": {"a": np.ones(3), "b": np.zeros(3)}, "shac": {"a": np.array([0.2, 0.9, 1.4]), "b": np.zeros(3)}}
    table = aggregate.aggregate_table(scores, seed=1).set_index("learner")
    assert (table.loc["dva", "mean low"], table.loc["dva", "mean high"]) == (0.5, 0.5)
    assert table.loc["shac", "mean low"] < table.loc["shac", "mean"] < table.loc["shac", "mean high"]
    assert aggregate.aggregate_table(scores, seed=1).equals(aggregate.aggregate_table(scores, seed=1))
    improvement = aggregate.improvement_table(scores, seed=1).iloc[0]
    assert improvement["comparison"] == "P(dva > shac)" and improvement["low"] <= improvement["probability"] <= 1


def test_aggregates_compare_learners_on_the_tasks_they_all_ran():
    scored = pd.DataFrame({"task": ["a", "a", "b", "c", "c"], "algo": ["dva", "shac", "dva", "dva", "shac"],
                           "score": [1.0, 0.5, 0.7, np.nan, 0.2]})  # fmt: skip
    assert aggregate.common_tasks(scored) == ["a"]  # b lacks shac; c's dva run has no score


def test_the_mean_interval_covers_the_true_mean_about_95_percent_of_the_time(monkeypatch):
    """Scores drawn from known distributions (3 tasks x 10 runs, task means 0, 1 and 2, unit spread): over
    1000 repetitions the 95% interval of the mean holds the true mean (1.0) about 90% of the time (a
    percentile bootstrap of 10 runs per task is a little narrow). Every draw is seeded: the count is fixed;
    resampling the pool instead of within tasks, or a wrong percentile, would fall far off."""
    monkeypatch.setattr(aggregate, "RESAMPLES", 300)
    monkeypatch.setattr(aggregate, "STATISTICS", {"mean": aggregate.STATISTICS["mean"]})
    rng = np.random.default_rng(0)
    hits = 0
    for repetition in range(1000):
        scores = {"x": {t: rng.normal(mean, 1.0, 10) for t, mean in (("a", 0.0), ("b", 1.0), ("c", 2.0))}}
        row = aggregate.aggregate_table(scores, seed=repetition).iloc[0]
        hits += row["mean low"] <= 1.0 <= row["mean high"]
    assert 0.87 <= hits / 1000 <= 0.97  # pooled resampling: ~1.0; a 50% interval: ~0.5
