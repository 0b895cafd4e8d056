"""``make plots`` (``python -m benchmark.figures``): every figure and table the runs under ``results/``
allow, into ``results/figures/`` (``report``), then every image of the README and docs/ that the shipped
reference set can draw (``manifest``, from ``docs/figures.yaml``), and the numbers docs/' prose cites from
it (``prose``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmark.figures import manifest, prose
from benchmark.figures.report import collect, floors_of, make_all
from benchmark.provenance import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=None, help="default: <results>/figures")
    args = parser.parse_args()
    out = args.out or args.results / "figures"
    runs = collect(args.results) if args.results.exists() else pd.DataFrame()  # read once, for both
    made, missing = make_all(args.results, out, runs)
    print(f"wrote {len(made)} files to {out}/:")
    for name in made:
        print(f"  {name}")
    for item in missing:
        print(f"missing: {item}")
    floors = floors_of(runs, args.results / "reference")[0] if not runs.empty else None
    drawn, absent = manifest.rebuild(runs, args.results / "reference", floors)
    print(f"docs figures from the shipped reference set: {len(drawn)} drawn, {len(absent)} missing")
    for name in drawn:
        print(f"  {name}")
    for item in absent:
        print(f"missing: {item}")
    prose.rewrite(ROOT, args.results / "reference")


if __name__ == "__main__":
    main()
