"""The numbers in the prose of the README and docs/, from the shipped reference set: ``make plots`` rewrites
them and a test holds the pages to the data, so a sentence cannot say what the cells do not.

Two forms in a Markdown page (both invisible on the rendered page but for what they write):

- a number followed by a comment naming its source, ``3080<!-- hopper/dva/120min/seed0 final_train_return -->``.
  The number keeps the form it is written in (its decimals, a thousands comma, a trailing ``M`` or ``k``
  for millions or thousands of the value) and is rewritten from the cell.
- a cell's curve at some minutes, one row per mark and the seeds side by side:
  ``<!-- milestones: hopper/dva/120min 10,30,60,90,120 -->`` then the table, then ``<!-- end milestones -->``.

A cell is ``task/algo/<folder>/seed<N>`` under ``results/reference/``, where the folder may be given by its
budget alone (``120min`` for ``preset-cpu_budget-120min``) when one folder has it; ``.../seeds`` is the
mean over the folder's seeds. What a number can be:

- a field of the cell's summary (``eval_return``, ``eval_return_sampled``, ``iterations``, ``env_steps``,
  ``peak_memory_mb``, ...), ``final_train_return`` as the tables compute it, ``minutes`` of its own clock,
  ``seconds_per_iteration``;
- its curve at a minute of its own clock: ``train_return@10`` (the mean over the five minutes before the
  mark, weighted by the iterations each curve row holds), ``policy_std@10`` (at the mark),
  ``actor_grad_norm@10`` (the median over the five minutes), ``iteration@10`` and ``env_steps@10``.

``python -m benchmark.figures.prose --check`` lists every number the data does not say; without ``--check``
it rewrites them (as ``make plots`` does).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.config import ConfigError
from benchmark.provenance import ROOT
from benchmark.reference import REFERENCE
from benchmark.results import clock_start, final_training, load_metrics, load_summary, markdown_table

WINDOW_MIN = 5.0  # a mark's training return and gradient norm: the five minutes before it
NUMBER = r"-?\d[\d,]*(?:\.\d+)?[Mk]?"
TAGGED = re.compile(rf"(?P<number>{NUMBER})<!-- (?P<cell>[\w.-]+/[\w.-]+/[\w.-]+/seed(?:\d+|s)) (?P<what>[\w@.]+) -->")
MILESTONES = re.compile(r"(<!-- milestones: (?P<cells>[\w.-]+/[\w.-]+/[\w.-]+) (?P<marks>[\d.,]+) -->\n)"
                        r"(?P<table>.*?)(<!-- end milestones -->)", re.S)  # fmt: skip
AT_MARK = ("train_return", "policy_std", "actor_grad_norm", "iteration", "env_steps")


@dataclass
class Stale:
    """A number or table of a page that is not what the data says (or cannot be read from it)."""

    page: Path
    written: str
    data: str
    source: str

    def __str__(self) -> str:
        return f"{self.page.name}: {self.source}: the page says {self.written}, the data {self.data}"


def cell_folder(reference: Path, spec: str) -> Path:
    """``task/algo/<folder or budget>[/seedN]`` as a folder of the reference set, or a ConfigError."""
    task, algo, folder, *seed = spec.split("/")
    parent = reference / task / algo
    matches = [parent / folder] if (parent / folder).is_dir() else sorted(parent.glob(f"*_budget-{folder}"))
    if len(matches) != 1:
        found = "no folder" if not matches else f"{len(matches)} folders"
        raise ConfigError(f"'{spec}': {found} of {parent} match '{folder}'")
    cell = matches[0] / seed[0] if seed else matches[0]
    if seed == ["seeds"] and seed_folders(matches[0]):
        return cell
    if not cell.is_dir():
        raise ConfigError(f"'{spec}': {cell} is not shipped")
    return cell


def at_mark(curve: pd.DataFrame, start: float, minute: float, what: str) -> float:
    """``what`` of a curve at ``minute`` of the run's own clock (see the module doc)."""
    clock = (curve["wall_clock"] - start) / 60
    if clock.iloc[-1] < minute - 1e-9:
        raise ConfigError(f"the run ends at minute {clock.iloc[-1]:.1f}, before {minute:g}")
    upto = curve[clock <= minute + 1e-9]
    if what in ("policy_std", "iteration", "env_steps"):
        return float(upto[what].iloc[-1])
    window = upto[clock[upto.index] > minute - WINDOW_MIN]
    if what == "actor_grad_norm":
        return float(window[what].median())
    weights = window["rows"] if "rows" in window else pd.Series(1.0, index=window.index)
    seen = window["train_return"].notna()
    return float(np.average(window.loc[seen, "train_return"], weights=weights[seen]))


def seed_folders(cells: Path) -> list[Path]:
    """The seeds of a cell folder, in seed order."""
    return sorted((p for p in cells.iterdir() if re.fullmatch(r"seed\d+", p.name)), key=lambda p: int(p.name[4:]))


def value_of(cell: Path, what: str) -> float:
    """The quantity ``what`` of a shipped cell (see the module doc), or a ConfigError naming what is wrong;
    of a folder of seeds (``.../seeds``), their mean."""
    if cell.name == "seeds":
        return float(np.mean([value_of(seed, what) for seed in seed_folders(cell.parent)]))
    if "@" in what:
        name, minute = what.split("@", 1)
        if name not in AT_MARK:
            raise ConfigError(f"'{what}': at a mark, one of {', '.join(AT_MARK)}")
        return at_mark(load_metrics(cell), clock_start(cell), float(minute), name)
    summary = load_summary(cell)
    if what == "final_train_return":
        return final_training(cell)["train_return"]
    if what == "minutes":
        return (float(summary["wall_clock"]) - clock_start(cell)) / 60
    if what == "seconds_per_iteration":
        return (float(summary["wall_clock"]) - clock_start(cell)) / summary["iterations"]
    value = summary.get(what)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"'{what}' is not a number of {cell.name}'s summary")
    return float(value)


def written_like(template: str, value: float) -> str:
    """``value`` in the form ``template`` is written in: its decimals, thousands comma and M/k suffix."""
    if not math.isfinite(value):
        return "nan"
    scale = {"M": 1e6, "k": 1e3}.get(template[-1], 1.0)
    suffix = template[-1] if scale != 1.0 else ""
    digits = template.rstrip("Mk")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    comma = "," if "," in digits else ""
    text = f"{value / scale:{comma}.{decimals}f}"
    return ("0" + text[2:] if text.startswith("-0") and float(text) == 0 else text) + suffix


def milestones_table(cells: Path, marks: list[float]) -> str:
    """The seeds of a cell folder at each mark: iterations, env steps, training return, policy std, gradient
    norm, the seeds' values side by side ("seed 0 / seed 1"; one value when they print alike)."""
    seeds = seed_folders(cells)
    curves = [(load_metrics(s), clock_start(s)) for s in seeds]
    forms = {"iteration": lambda v: f"{v:.0f}", "env_steps": lambda v: f"{v / 1e6:.2f}M",
             "train_return": lambda v: f"{v:.0f}", "policy_std": lambda v: f"{v:#.2g}",
             "actor_grad_norm": lambda v: f"{v:.1f}"}  # fmt: skip
    names = {"iteration": "iterations", "env_steps": "env steps", "train_return": "training return",
             "policy_std": "policy std", "actor_grad_norm": "gradient norm"}  # fmt: skip
    rows = []
    for minute in marks:
        row = {"minute": f"{minute:g}"}
        for what, form in forms.items():
            if what not in curves[0][0] or curves[0][0][what].isna().all():
                continue  # a learner that does not log it (DrQ-v2 has no actor gradient norm)
            shown = [form(at_mark(curve, start, minute, what)) for curve, start in curves]
            row[names[what]] = shown[0] if len(set(shown)) == 1 else " / ".join(shown)
        rows.append(row)
    title = " / ".join(s.name.replace("seed", "seed ") for s in seeds)
    return f"{title}:\n\n" + markdown_table(pd.DataFrame(rows)) + "\n"


def rendered(text: str, reference: Path, page: Path = Path("page.md")) -> tuple[str, list[Stale]]:
    """``text`` with every tagged number and milestones table rewritten from ``reference``, and what was not
    (a tag the data cannot answer stays as written, and is listed)."""
    unreadable: list[Stale] = []

    def number(match: re.Match) -> str:
        try:
            value = value_of(cell_folder(reference, match["cell"]), match["what"])
        except ConfigError as error:
            unreadable.append(Stale(page, match["number"], f"cannot say ({error})", f"{match['cell']} {match['what']}"))
            return match[0]
        return written_like(match["number"], value) + match[0][len(match["number"]) :]

    def table(match: re.Match) -> str:
        try:
            marks = [float(m) for m in match["marks"].split(",") if m]
            return match.group(1) + milestones_table(cell_folder(reference, match["cells"]), marks) + match.group(5)
        except ConfigError as error:
            unreadable.append(Stale(page, "a table", f"cannot say ({error})", f"milestones {match['cells']}"))
            return match[0]

    return MILESTONES.sub(table, TAGGED.sub(number, text)), unreadable


def differences(text: str, reference: Path, page: Path = Path("page.md")) -> list[Stale]:
    """Every tagged number or table of ``text`` that the data does not say, with what it does say."""
    new, stale = rendered(text, reference, page)
    old_numbers, new_numbers = TAGGED.finditer(text), TAGGED.finditer(new)
    for old, fresh in zip(old_numbers, new_numbers, strict=True):
        if old["number"] != fresh["number"]:
            stale.append(Stale(page, old["number"], fresh["number"], f"{old['cell']} {old['what']}"))
    for old, fresh in zip(MILESTONES.finditer(text), MILESTONES.finditer(new), strict=True):
        if old["table"] != fresh["table"]:
            stale.append(Stale(page, "a table", "another", f"milestones {old['cells']}"))
    return stale


def pages(root: Path = ROOT) -> list[Path]:
    """The pages whose prose may cite the data: the README and docs/ (the dated notes in docs/notes/ keep
    the numbers of their day)."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def rewrite(root: Path = ROOT, reference: Path = REFERENCE) -> None:
    """Rewrite the tagged numbers of every page under ``root`` from ``reference``, saying which pages changed
    and which tags the data cannot answer (``make plots``' last step)."""
    for page in pages(root):
        text = page.read_text()
        new, unanswered = rendered(text, reference, page)
        if new != text:
            page.write_text(new)
            print(f"rewrote the numbers of {page.relative_to(root)} from the shipped cells")
        for stale in unanswered:
            print(f"missing: {stale}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the numbers the README and docs/ cite, against the shipped cells")
    parser.add_argument("--check", action="store_true", help="list what differs and exit 1; rewrite nothing")
    args = parser.parse_args(argv)
    if not args.check:
        rewrite()
        return
    stale = [s for page in pages() for s in differences(page.read_text(), REFERENCE, page)]
    for item in stale:
        print(item)
    sys.exit(1 if stale else 0)


if __name__ == "__main__":
    main()
