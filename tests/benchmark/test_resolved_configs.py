"""The configs folder may be reorganised (per-algo defaults, per-task differences, inheritance) but what
a run resolves to must not move: every algo x task, at the paper's settings and the CPU preset, equals
the snapshot taken before the reorganisation (tests/data/resolved_configs.json). A deliberate change of
a setting updates the snapshot in the same commit, and docs/fidelity.md says why."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from benchmark.config import algorithms, load_config, tasks

SNAPSHOT = json.loads((Path(__file__).resolve().parents[1] / "data" / "resolved_configs.json").read_text())


def test_the_snapshot_covers_every_algo_and_task():
    assert len(SNAPSHOT) == 2 * len(algorithms()) * len(tasks()) == 72


@pytest.mark.parametrize("key", sorted(SNAPSHOT))
def test_every_resolved_config_is_unchanged(key):
    algo, task, preset = key.split("/")
    resolved = load_config(algo, task, [] if preset == "paper" else [f"preset={preset}"])
    assert OmegaConf.to_container(resolved) == SNAPSHOT[key]
