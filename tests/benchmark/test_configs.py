"""Every config file says where its values come from, on its first line: the upstream file it follows
(repository and path, readable by anyone), or that it is this suite's own (presets, campaigns, sweep
defaults); and the mission command picks settings a CPU can run."""

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from algorithms import registry as learner_registry
from algorithms.base import Bound, bound_of
from benchmark import doc_tables
from benchmark.config import algorithms, load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
OUTSIDE = "shared" + "/reference"  # the facts folder beside the clone (spelt apart: this file must not match)
UPSTREAM = re.compile(r"^# source: [\w.-]+/[\w.-]+ \S+\.yaml")  # owner/repo path/to/file.yaml
OURS = re.compile(r"^# source: this suite")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_config_names_its_source_on_its_first_line(path):
    first = path.read_text().splitlines()[0]
    assert UPSTREAM.match(first) or OURS.match(first), first
    assert OUTSIDE not in path.read_text()  # outside the repository: nobody who clones it can follow


def test_no_tracked_file_points_outside_the_repository_for_its_facts():
    """Facts are cited from docs/ (ours) or upstream repositories, never from a folder next to the clone."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    suffixes = (".py", ".md", ".yaml", ".toml", ".txt", "")
    texts = [ROOT / f for f in tracked if Path(f).suffix in suffixes and (ROOT / f).is_file()]
    assert len(texts) > 100
    pointing = [str(p.relative_to(ROOT)) for p in texts if OUTSIDE in p.read_text(errors="ignore")]
    assert pointing == []


def test_learner_configs_follow_an_upstream_file_and_only_presets_are_ours():
    ours = [p for p in CONFIGS if OURS.match(p.read_text().splitlines()[0])]
    assert all(p.parent.name in ("presets", "campaigns") or p.name == "sweep.yaml" for p in ours), ours
    assert {p.parent.name for p in CONFIGS if p.name == "defaults.yaml"} == set(algorithms())
    assert len(algorithms()) == 9


def test_make_bench_without_a_gpu_runs_the_cpu_preset_for_an_hour_and_says_so_first():
    def dry_run(*args: str) -> tuple[str, str]:
        done = subprocess.run(["make", "-n", "bench", "ALGO=dva", "TASK=hopper", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True)  # fmt: skip
        command = next(line for line in done.stdout.splitlines() if "benchmark.run" in line)
        return done.stdout, command

    printed, command = dry_run("HAS_GPU=")
    assert "no GPU: PRESET=cpu BUDGET=1h; PRESET=paper runs the paper's settings" in printed
    assert command.split()[-2:] == ["preset=cpu", "budget=1h"]
    for given in (["PRESET=paper"], ["BUDGET=10min"], ["ARGS=preset=cpu"]):  # what the user says is honoured
        printed, command = dry_run("HAS_GPU=", *given)
        assert "no GPU" not in printed and "budget=1h" not in command
    assert "preset=" not in dry_run("HAS_GPU=1")[1]  # a GPU: the paper's settings, as before
    assert load_config("dva", "hopper", ["preset=paper"]) == load_config("dva", "hopper")


def test_sapien_is_pointed_at_lavapipe_only_on_machines_without_a_gpu(monkeypatch):
    if not Path("/opt/lavapipe/lvp_icd.json").exists():
        pytest.skip("no lavapipe here (make vulkan)")
    monkeypatch.delenv("VK_ICD_FILENAMES", raising=False)

    def exported(*args: str) -> bool:
        database = subprocess.run(["make", "-p", "-n", "lint", *args], cwd=ROOT,
                                  capture_output=True, text=True).stdout  # fmt: skip
        return any(line.startswith("VK_ICD_FILENAMES :=") for line in database.splitlines())

    assert exported("HAS_GPU=") and not exported("HAS_GPU=1")


def _outside(bound: Bound, value):
    """A value the bound refuses, of the field's kind."""
    if bound.choices is not None:
        return "nope"
    if isinstance(value, list):
        return []
    for limit, step in ((bound.low, -1), (bound.above, 0), (bound.high, 1), (bound.below, 0)):
        if limit is not None:
            return type(value)(limit + step) if isinstance(value, int) else limit + step
    raise AssertionError(bound)


@pytest.mark.parametrize("name", list(learner_registry()))
def test_every_bounded_field_of_every_learner_refuses_a_value_outside_its_bound(name):
    """Bounds are declared once, with the field; one place checks them. A subclass that only changes a
    field's default (DrQ-v2's buffer_size) keeps its parent's bound."""
    config = learner_registry()[name].Config
    checked = 0
    for f in dataclasses.fields(config):
        bound = bound_of(config, f.name)
        if bound is None:
            continue
        default = getattr(config(), f.name)
        with pytest.raises(ValueError, match=f"^{f.name}="):
            config(**{f.name: _outside(bound, default if default is not None else 1)})
        checked += 1
    assert checked >= 1
    with pytest.raises(ValueError, match=r"^betas=\[0.5\]: give 2 values in \[0, 1\)$"):
        learner_registry()["shac"].Config(betas=[0.5])


def test_a_subclass_changing_only_a_default_keeps_the_bound():
    from algorithms.drqv2 import DrQv2Config

    assert "bound" not in {f.name: f for f in dataclasses.fields(DrQv2Config)}["buffer_size"].metadata
    with pytest.raises(ValueError, match=r"^buffer_size=0: must be at least 1$"):
        DrQv2Config(buffer_size=0)


def test_the_generated_docs_tables_are_what_the_code_makes_of_them_now():
    """docs/learners.md's tables and docs/tests.md's list of test files equal what `make docs` writes now:
    a default, bound or comment changed in the code, or a test file added, without `make docs` fails
    here, as does a learner without its table."""
    tests_page = doc_tables.TESTS_PAGE.read_text()
    assert doc_tables.rendered_tests(tests_page) == tests_page, "run `make docs`"
    text = doc_tables.PAGE.read_text()
    assert doc_tables.rendered(text) == text, "run `make docs`"
    assert {name for _, name, _, _ in doc_tables.BLOCK.findall(text)} == set(learner_registry())
    assert "| `horizon` | `32` | in [1, 4096] | steps per short-horizon window |" in text
