"""``make paper``: what it would run and in which order, with its cost, and that it copies a script
figure into docs/ from where its command writes it."""

import yaml

from benchmark import campaign as campaigns
from benchmark import paper

CAMPAIGN = {"learners": ["shac", "dva"], "tasks": ["cartpole", "hopper"], "seeds": [0, 1], "preset": "cpu",
            "budget": {"cartpole": "15min", "hopper": "30min"}, "overrides": [], "executor": "local",
            "parallel": 2}  # fmt: skip
FIGURES = {
    "docs/fig4_t.png": {"kind": "runs", "draw": "comparison", "select": {"campaign": "t"},
                        "command": "make campaign NAME=t"},
    "docs/costs.png": {"kind": "script", "command": "make apg-costs PRESET=cpu", "writes": "results/costs.png",
                       "core_hours": 0.5},
    "docs/shipped.png": {"kind": "script", "command": "make render TASK=ant"},
}  # fmt: skip


def setup(tmp_path, monkeypatch):
    (tmp_path / "configs" / "campaigns").mkdir(parents=True)
    (tmp_path / "configs" / "campaigns" / "t.yaml").write_text(yaml.safe_dump(CAMPAIGN))
    monkeypatch.setattr(campaigns, "CONFIG_DIR", tmp_path / "configs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "shipped.png").write_bytes(b"png")  # already in docs: not made again


def test_the_dry_run_lists_the_missing_cells_and_script_figures_with_their_core_hours(tmp_path, monkeypatch):
    setup(tmp_path, monkeypatch)
    lines = paper.plan(FIGURES, tmp_path / "results", tmp_path / "reference", tmp_path)
    # 2 learners x 2 seeds: 4 cartpole cells of 15 min and 4 hopper cells of 30 min = 3 core-hours
    assert lines[0] == "make campaign NAME=t  # 8 cell(s), about 3.0 core-hours"
    assert lines[1] == "make apg-costs PRESET=cpu  # for docs/costs.png, about 0.5 core-hours"
    assert lines[2].startswith("make plots") and len(lines) == 3


def test_make_paper_runs_campaigns_then_scripts_then_redraws_and_copies_what_a_script_wrote(tmp_path, monkeypatch):
    setup(tmp_path, monkeypatch)
    ran = []

    def fake_run(command):
        ran.append(command[1:] if command[0] != "make" else command)
        if command[:2] == ["make", "apg-costs"]:
            (tmp_path / "results").mkdir(exist_ok=True)
            (tmp_path / "results" / "costs.png").write_bytes(b"measured")

    monkeypatch.setattr(paper, "run", fake_run)
    paper.make(FIGURES, tmp_path / "results", tmp_path / "reference", tmp_path)
    assert ran == [["-m", "benchmark.campaign", "run", "--name", "t"],
                   ["-m", "benchmark.campaign", "publish", "--name", "t"],
                   ["make", "apg-costs", "PRESET=cpu"],
                   ["-m", "benchmark.figures"]]  # fmt: skip
    assert (tmp_path / "docs" / "costs.png").read_bytes() == b"measured"
