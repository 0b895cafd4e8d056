"""The generated tables of docs/: in learners.md the algos as learner classes and switches (from configs/),
and every learner's settings from its config dataclass (default, allowed values from ``bounded``, the
comment beside the field in the code), so the page cannot drift from what the runner accepts. ``make
docs`` rewrites them in place (between ``<!-- settings: <learner> -->`` and ``<!-- end settings -->``,
``<!-- algos -->`` and ``<!-- end algos -->``); in tests.md every test file with what its docstring says
(``<!-- test files -->``); a test fails when they differ.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import sys
from pathlib import Path

import pandas as pd

from algorithms import get_learner, registry
from algorithms.base import bound_of
from benchmark.config import algorithms, load_config
from benchmark.provenance import ROOT
from benchmark.results import markdown_table

PAGE = ROOT / "docs" / "learners.md"
TESTS_PAGE = ROOT / "docs" / "tests.md"
TESTS = re.compile(r"(<!-- test files -->\n)(.*?)(<!-- end test files -->)", re.S)
BLOCK = re.compile(r"(<!-- settings: (\w+) -->\n)(.*?)(<!-- end settings -->)", re.S)
ALGOS = re.compile(r"(<!-- algos -->\n)(.*?)(<!-- end algos -->)", re.S)


def field_comments(config: type) -> dict[str, str]:
    """``name -> the comment on its line`` for every field declared in ``config`` and its parents."""
    comments: dict[str, str] = {}
    for klass in reversed(config.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            found = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.*)$", line)
            if found:
                comments[found.group(1)] = found.group(2).strip()
    return comments


def settings_table(learner: str) -> str:
    """A Markdown table of the learner's settings: name, default, allowed values, what it is."""
    config = get_learner(learner).Config
    comments = field_comments(config)
    rows = []
    for f in dataclasses.fields(config):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        bound = bound_of(config, f.name)
        allowed = "" if bound is None else bound.describe()
        if bound is not None and isinstance(default, list) and bound.choices is None:
            allowed = f"{bound.count or 'one or more'} values {allowed}"
        rows.append({"setting": f"`{f.name}`", "default": f"`{default}`", "allowed": allowed,
                     "what it is": comments.get(f.name, "").replace("|", "\\|")})  # fmt: skip
    return markdown_table(pd.DataFrame(rows))


def algos_table(task: str = "hopper") -> str:
    """Each algo (a directory of configs/) as its learner class and the switches that make it that algo,
    as its config files give them for ``task``."""
    rows = []
    for algo in algorithms():
        cfg = load_config(algo, task)
        rows.append({"algo": f"`{algo}`", "learner": f"`algorithms/{cfg.learner}.py`",
                     "actor sees": f"frames ({cfg.renderer} renderer)" if cfg.renderer else "the state",
                     "actor input detached": {True: "yes", False: "no"}.get(cfg.get("detach_actor_input"), ""),
                     "teacher": cfg.teacher or "", "action repeat": cfg.action_repeat,
                     f"envs ({task})": cfg.num_envs})  # fmt: skip
    return markdown_table(pd.DataFrame(rows))


PACKAGE_ORDER = ["envs", "algorithms", "benchmark"]  # the layers, bottom up


def tests_table(folder: Path = ROOT / "tests") -> str:
    """Every test file, folder by folder (``tests/envs/``, ``tests/algorithms/``, ``tests/benchmark/``: the
    package it covers), with its test functions' count and what its module docstring says it checks."""
    rows = []
    for path in sorted(folder.rglob("test_*.py"), key=lambda p: (PACKAGE_ORDER.index(p.parent.name), p.name)):
        module = ast.parse(path.read_text())
        doc = " ".join((ast.get_docstring(module) or "").split("\n\n")[0].split())
        tests = sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in module.body)
        name = path.relative_to(folder.parent).as_posix()
        rows.append({"file": f"`{name}`", "tests": tests, "what it checks": doc.replace("|", "\\|")})
    return markdown_table(pd.DataFrame(rows))


def rendered_tests(text: str) -> str:
    return TESTS.sub(lambda m: m.group(1) + tests_table() + "\n" + m.group(3), text)


def rendered(text: str) -> str:
    """``text`` with every generated block rewritten."""
    text = BLOCK.sub(lambda m: m.group(1) + settings_table(m.group(2)) + "\n" + m.group(4), text)
    return ALGOS.sub(lambda m: m.group(1) + algos_table() + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page differs from the code")
    args = parser.parse_args(argv)
    text = PAGE.read_text()
    unknown = [name for _, name, _, _ in BLOCK.findall(text) if name not in registry()]
    if unknown:
        print(f"error: {PAGE} has settings blocks of unknown learners: {', '.join(unknown)}", file=sys.stderr)
        sys.exit(2)
    pages = {PAGE: (text, rendered(text)), TESTS_PAGE: (TESTS_PAGE.read_text(), rendered_tests(TESTS_PAGE.read_text()))}
    if args.check:
        sys.exit(0 if all(old == new for old, new in pages.values()) else 1)
    for page, (old, new) in pages.items():
        if new != old:
            page.write_text(new)
            print(f"rewrote the generated tables of {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
