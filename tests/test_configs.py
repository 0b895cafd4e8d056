"""Every config file says where its values come from, on its first line: the upstream file it follows
(repository and path, readable by anyone), or that it is this suite's own (presets, campaigns, sweep defaults)."""

import re
from pathlib import Path

import pytest

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").rglob("*.yaml"))
UPSTREAM = re.compile(r"^# source: [\w.-]+/[\w.-]+ \S+\.yaml")  # owner/repo path/to/file.yaml
OURS = re.compile(r"^# source: this suite")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_config_names_its_source_on_its_first_line(path):
    first = path.read_text().splitlines()[0]
    assert UPSTREAM.match(first) or OURS.match(first), first
    assert "shared/reference" not in path.read_text()  # outside the repository: nobody who clones it can follow


def test_learner_configs_follow_an_upstream_file_and_only_presets_are_ours():
    ours = [p for p in CONFIGS if OURS.match(p.read_text().splitlines()[0])]
    assert all(p.parent.name in ("presets", "campaigns") or p.name == "sweep.yaml" for p in ours), ours
    assert len(CONFIGS) - len(ours) == 32  # 8 algos x 4 tasks
