"""``make site``: ``results/site/index.html``, one self-contained page of a campaign's results.

It opens offline from ``file://`` (no CDN: figures and videos are inlined as data URIs) and holds: when
and from which commit it was built; the task x learner table (final training return with its interval,
evaluation, random policy, published value, normalised score); the comparison figure (the paper's Fig. 4)
and the aggregate statistics; the cost figures where ``docs/`` has them (Table 1, Fig. 10); per run, its
video, its provenance (commit, date, device) and a link to its raw curve in the reference set.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from benchmark import floors as stored_floors
from benchmark.campaign import Campaign
from benchmark.config import ConfigError
from benchmark.figures import aggregate
from benchmark.figures.report import campaign_runs, campaign_table, collect, comparison_figure, normalise_by
from benchmark.provenance import ROOT, git_state
from benchmark.reference import REFERENCE
from benchmark.results import file_within

COST_FIGURES = ("docs/apg_costs_cpu.png", "docs/fig10_scene_growth_cpu.png")
# No script runs on the page, whatever a shipped cell holds: images and videos only as embedded data,
# the style only inline (a second fence behind the escaping of every shipped string)
POLICY = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
          "media-src data:; style-src 'unsafe-inline'\">")  # fmt: skip
STYLE = """body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}img{max-width:100%}video{width:380px;margin:4px}.run{margin:1em 0}
.small{color:#666;font-size:85%}"""


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


def figure_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return data_uri(buffer.getvalue(), "image/png")


def table_html(frame: pd.DataFrame, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_text(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(False))
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _text(value) -> str:
    """A shipped value as page text: formatted, then escaped (a cell's files are input like any other)."""
    return html.escape(_cell(value))


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.3g}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def build(campaign: Campaign, reference: Path, out: Path) -> Path:
    """Write ``out/index.html`` from the campaign's cells shipped in ``reference``; returns its path."""
    runs = collect(reference) if reference.exists() else pd.DataFrame()
    cells = campaign_runs(runs, campaign, reference) if not runs.empty else runs
    if cells.empty:
        raise ConfigError(f"no cell of campaign '{campaign.name}' is shipped in {reference}; make campaign first")
    floors = stored_floors.wide(stored_floors.load(reference))
    table = campaign_table(cells, campaign, floors).drop(columns=["ci_low", "ci_high"])
    git = git_state()
    parts = [
        f"<h1>Campaign '{html.escape(campaign.name)}'</h1>",
        f'<p class="small" id="built">built {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from commit '
        f"{html.escape(str(git.get('commit', '?')))[:12]}{' (dirty)' if git.get('dirty') else ''}; "
        f"{len(cells)} runs from {html.escape(os.path.relpath(reference))}</p>",
        "<h2>Final returns</h2>", table_html(table, "returns"),
        f'<img alt="comparison" src="{figure_uri(comparison_figure(cells, campaign, floors))}">',
    ]  # fmt: skip
    parts += _aggregate_section(cells, campaign, floors)
    parts += ["<h2>Floors</h2>", table_html(stored_floors.load(reference), "floors")]
    costs = [path for path in COST_FIGURES if (ROOT / path).exists()]
    if costs:
        parts.append("<h2>Costs (Table 1, Fig. 10)</h2>")
        parts += [f'<img alt="{p}" src="{data_uri((ROOT / p).read_bytes(), "image/png")}">' for p in costs]
    parts.append("<h2>Runs</h2>")
    for run in cells.sort_values(["task", "algo", "seed"]).itertuples():
        parts.append(_run_html(Path(run.path), out, run))
    page = out / "index.html"
    out.mkdir(parents=True, exist_ok=True)
    body = "\n".join(parts)
    head = f'<meta charset="utf-8">{POLICY}<title>{html.escape(campaign.name)}</title><style>{STYLE}</style>'
    page.write_text(f"<!doctype html><html><head>{head}</head><body>{body}</body></html>\n")
    return page


def _aggregate_section(cells: pd.DataFrame, campaign: Campaign, floors: pd.DataFrame) -> list[str]:
    reference = normalise_by()
    found = aggregate.of_campaign(cells, campaign.learners, floors, reference)
    if found is None:
        return []
    tasks, scores, table = found
    fig = aggregate.campaign_figure(cells, campaign.learners, floors, reference, tasks, scores, table)
    return [f"<h2>Aggregate over {html.escape(', '.join(tasks))}</h2>", table_html(table.round(3), "aggregate"),
            f'<img alt="aggregate" src="{figure_uri(fig)}">']  # fmt: skip


def _run_html(run: Path, out: Path, row) -> str:
    try:  # a cell's provenance is shown, never trusted: a damaged one shows as unknown
        provenance = json.loads(file_within(run, "provenance.json").read_text())
        provenance = provenance if isinstance(provenance, dict) else {}
    except (AttributeError, OSError, ValueError):
        provenance = {}
    commit = str(provenance.get("git", {}).get("commit", "?"))[:12]
    started = provenance.get("start", "?")
    host = (provenance.get("device") or {}).get("name") or (provenance.get("device") or {}).get("model") or "?"
    curve = os.path.relpath(run / "curve.csv.gz", out)
    parts = [f'<div class="run"><b>{html.escape(row.algo)} / {html.escape(row.task)} / seed {_text(row.seed)}</b> '
             f"({html.escape(str(row.status))}; evaluation {_text(row.eval_return)}) "
             f'<span class="small">commit {html.escape(commit)}, {html.escape(str(started))}, '
             f"on {html.escape(str(host))}; "
             f'<a class="curve" href="{html.escape(curve)}">raw curve</a></span><br>']  # fmt: skip
    webm = file_within(run, "video/policy.webm")
    if webm is not None:
        poster = file_within(run, "video/policy.png")
        cover = f' poster="{data_uri(poster.read_bytes(), "image/png")}"' if poster is not None else ""
        parts.append(f'<video controls muted preload="auto"{cover} src="{data_uri(webm.read_bytes(), "video/webm")}">'
                     "</video>")  # fmt: skip
    return "".join(parts) + "</div>"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="cpu", help="configs/campaigns/<name>.yaml")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--out", type=Path, default=Path("results/site"))
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of its first screen (Playwright + chromium)")
    args = parser.parse_args(argv)
    try:
        page = build(Campaign.load(args.name), args.reference, args.out)
        if args.screenshot:
            screenshot(page, args.screenshot)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {page} ({page.stat().st_size / 2**20:.1f} MB; opens offline)")


def chromium() -> str | None:
    """Debian's chromium (``apt install chromium``): Playwright drives it, as it cannot download its own here."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, target: Path) -> None:
    """A PNG of ``page`` (its first screen) in headless chromium."""
    browser_path = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError("screenshots need Playwright: pip install 'dva-bench[site]'") from None
    if browser_path is None:
        raise ConfigError("screenshots need chromium: apt install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        view = browser.new_page(viewport={"width": 1300, "height": 900})
        view.goto(page.resolve().as_uri())
        view.screenshot(path=str(target), full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
