"""The numbers docs/' prose cites (benchmark/figures/prose.py): a tagged number is rewritten from its shipped
cell in the form it is written in, a curve's value at a mark is the mean the module doc defines (computed
by hand here), a wrong number or a tag the data cannot answer is named, and the pages of docs/ say what
the shipped reference set says."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmark.figures import prose
from benchmark.provenance import ROOT
from benchmark.reference import REFERENCE


def _cell(reference: Path, seed: int, curve: pd.DataFrame, **summary) -> Path:
    cell = reference / "hopper" / "dva" / "preset-cpu_budget-120min" / f"seed{seed}"
    cell.mkdir(parents=True)
    record = {"status": "complete", "algo": "dva", "task": "hopper", "seed": seed, "iterations": 1200,
              "env_steps": 614_400, "wall_clock": 720.0, "eval_return": 3044.8, **summary}  # fmt: skip
    (cell / "summary.json").write_text(json.dumps(record))
    curve.to_csv(cell / "curve.csv.gz", index=False)
    return cell


def _curve(returns: list[float], rows: list[int]) -> pd.DataFrame:
    """One curve row per minute (1..12), ``rows`` iterations in each."""
    minutes = range(1, len(returns) + 1)
    return pd.DataFrame({"iteration": [100 * m for m in minutes], "wall_clock": [60.0 * m for m in minutes],
                         "env_steps": [51_200 * m for m in minutes], "train_return": returns,
                         "policy_std": [0.5 - 0.01 * m for m in minutes],
                         "actor_grad_norm": [float(m) for m in minutes], "rows": rows})  # fmt: skip


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    returns = [10.0 * m for m in range(1, 13)]
    _cell(tmp_path, 0, _curve(returns, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), final_train_return=1234.4)
    _cell(tmp_path, 1, _curve([r + 1 for r in returns], [1] * 12), final_train_return=1500.0, eval_return=-0.2)
    return tmp_path


def test_a_tagged_number_is_rewritten_from_its_cell_in_the_form_it_is_written(reference):
    text = (
        "evaluates at 1<!-- hopper/dva/120min/seed0 eval_return -->, trains to 9.9<!-- hopper/dva/120min/seed0 "
        "final_train_return -->, runs 1<!-- hopper/dva/120min/seed0 iterations --> iterations (0.1M<!-- "
        "hopper/dva/120min/seed0 env_steps --> steps, 5k<!-- hopper/dva/preset-cpu_budget-120min/seed0 "
        "env_steps -->) in 0<!-- hopper/dva/120min/seed0 minutes --> minutes, 1,000,000<!-- hopper/dva/120min/seed0 "
        "env_steps -->; seed 1 at 5<!-- hopper/dva/120min/seed1 eval_return -->, both 5<!-- hopper/dva/120min/seeds "
        "eval_return -->"
    )
    new, unanswered = prose.rendered(text, reference)
    assert unanswered == []
    assert new == (
        "evaluates at 3045<!-- hopper/dva/120min/seed0 eval_return -->, trains to 1234.4<!-- hopper/dva/120min/seed0 "
        "final_train_return -->, runs 1200<!-- hopper/dva/120min/seed0 iterations --> iterations (0.6M<!-- "
        "hopper/dva/120min/seed0 env_steps --> steps, 614k<!-- hopper/dva/preset-cpu_budget-120min/seed0 "
        "env_steps -->) in 12<!-- hopper/dva/120min/seed0 minutes --> minutes, 614,400<!-- hopper/dva/120min/seed0 "
        "env_steps -->; seed 1 at 0<!-- hopper/dva/120min/seed1 eval_return -->, both 1522<!-- hopper/dva/120min/seeds "
        "eval_return -->"
    )  # -0.2 at no decimals reads 0, not -0; the seeds' mean (3044.8 - 0.2) / 2 = 1522.3


def test_a_value_at_a_mark_is_the_curve_over_the_five_minutes_before_it(reference):
    cell = prose.cell_folder(reference, "hopper/dva/120min/seed0")
    # minutes 6..10: returns 60..100 weighted by 6..10 iterations
    assert prose.value_of(cell, "train_return@10") == pytest.approx((60 * 6 + 70 * 7 + 80 * 8 + 90 * 9 + 100 * 10) / 40)
    assert prose.value_of(cell, "actor_grad_norm@10") == 8.0  # the median of 6..10
    assert prose.value_of(cell, "policy_std@10") == pytest.approx(0.40)
    assert prose.value_of(cell, "env_steps@10") == 512_000
    table = prose.milestones_table(cell.parent, [5, 10])
    assert table.splitlines()[0] == "seed 0 / seed 1:"
    # seed 0: 3300 / 40 = 82.5, printed 82 (to even); seed 1, one iteration per row: 81
    assert "| 10 | 1000 | 0.51M | 82 / 81 | 0.40 | 8.0 |" in table


def test_a_wrong_number_and_a_tag_the_data_cannot_answer_are_named_and_left_as_written(reference):
    text = (
        "3044<!-- hopper/dva/120min/seed0 eval_return --> 7<!-- hopper/dva/120min/seed9 eval_return --> "
        "7<!-- hopper/dva/120min/seed0 eval_retrun --> 7<!-- hopper/dva/120min/seed0 train_return@500 -->"
    )
    stale = prose.differences(text, reference)
    assert [(s.written, s.source) for s in stale] == [
        ("7", "hopper/dva/120min/seed9 eval_return"),
        ("7", "hopper/dva/120min/seed0 eval_retrun"),
        ("7", "hopper/dva/120min/seed0 train_return@500"),
        ("3044", "hopper/dva/120min/seed0 eval_return"),
    ]
    assert stale[3].data == "3045"
    assert "is not shipped" in stale[0].data and "not a number" in stale[1].data and "before 500" in stale[2].data
    assert prose.rendered(text, reference)[0].split(" ")[1:] == text.split(" ")[1:]  # unanswerable: untouched


def test_the_readme_and_docs_cite_what_the_shipped_reference_set_says():
    """Every tagged number and milestones table of README.md and docs/*.md equals what `make plots` writes from
    results/reference/ now: a cell re-run and shipped without `make plots`, or a number typed by hand next to
    its tag, fails here."""
    tagged = 0
    for page in prose.pages(ROOT):
        text = page.read_text()
        tagged += len(prose.TAGGED.findall(text)) + len(prose.MILESTONES.findall(text))
        stale = prose.differences(text, REFERENCE, page)
        assert not stale, "run `make plots`; " + "; ".join(map(str, stale))
    assert tagged >= 20  # the comparison's prose is held to the data, not a page without tags
