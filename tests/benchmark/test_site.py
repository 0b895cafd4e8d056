"""``make site``: one offline page of a campaign's results, opened in a real browser (Debian's chromium,
driven headless by Playwright): no console errors, every image and video loads, one table row per task x
learner, every run's curve link resolves."""

import base64
import html
import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from benchmark import campaign as campaigns
from benchmark.config import load_config
from benchmark.figures import site, video
from benchmark.reference import publish
from benchmark.run import run

CHROMIUM = site.chromium()
TINY = ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2", "eval_max_steps=10", "iterations=12"]


@pytest.fixture
def shipped(tmp_path):
    """A campaign of two learners on cartpole, shipped with floors and one run's video."""
    plan = campaigns.Campaign(name="t", learners=["shac", "dpg_state"], tasks=["cartpole"], seeds=[0], preset=None,
                              budget={"cartpole": "1h"}, overrides=TINY, executor="inline", parallel=1)  # fmt: skip
    reference = tmp_path / "reference"
    for algo in plan.learners:
        out = run(
            load_config(algo, "cartpole", plan.overrides_for(algo, "cartpole", 0, tmp_path / "c")), progress=False
        )
        if algo == "shac":
            video.write(video.record(out, num_envs=2, max_frames=6), out / "video")
        publish(out, reference, allow_dirty=True)
    pd.DataFrame({"task": ["cartpole"] * 2, "task_version": [2] * 2, "policy": ["random", "zero"],
                  "action_repeat": [1, 1], "episodes": [64] * 2, "mean": [930.0, 2116.0], "std": [1.0, 1.0],
                  "min": [0.0] * 2, "max": [0.0] * 2}).to_csv(reference / "floors.csv", index=False)  # fmt: skip
    return plan, reference, tmp_path / "site"


def test_the_page_opens_offline_in_a_browser_with_everything_loaded(shipped):
    if CHROMIUM is None:
        pytest.skip("no chromium here (apt install chromium)")
    pytest.importorskip("imageio_ffmpeg", reason="the page's video needs imageio-ffmpeg")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    plan, reference, out = shipped
    page_path = site.build(plan, reference, out)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 2 || v.error)")
        images = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        videos = page.eval_on_selector_all("video", "els => els.map(e => [e.readyState, e.error && e.error.code])")
        rows = page.eval_on_selector_all("#returns tbody tr", "els => els.length")
        links = page.eval_on_selector_all("a.curve", "els => els.map(e => e.href)")
        page.screenshot(path=str(out / "screenshot.png"), full_page=True)
        browser.close()
    assert errors == []
    assert len(images) >= 2 and all(width > 0 for width in images)  # the comparison and aggregate figures
    assert videos == [[4, None]] or all(state >= 2 and error is None for state, error in videos)
    assert len(videos) == 1 and rows == len(plan.tasks) * len(plan.learners)
    assert len(links) == 2 and all(os.path.exists(unquote(urlparse(link).path)) for link in links)
    assert Path(out / "screenshot.png").stat().st_size > 10_000


PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"


def plant(plan, reference: Path, secret: Path) -> Path:
    """A hostile shipped cell: markup in its summary and a poster that links to a file outside."""
    cell = next(reference.glob("cartpole/shac/*/seed0"))
    summary = json.loads((cell / "summary.json").read_text())
    (cell / "summary.json").write_text(json.dumps({**summary, "eval_return": PAYLOAD, "status": PAYLOAD}))
    secret.write_bytes(b"PRIVATE-KEY-" * 20)
    (cell / "video" / "policy.png").unlink()
    (cell / "video" / "policy.png").symlink_to(secret)
    return cell


def test_the_page_escapes_what_a_cell_says_and_embeds_nothing_a_symlink_points_to(shipped, tmp_path):
    plan, reference, out = shipped
    plant(plan, reference, tmp_path / "secret")
    text = site.build(plan, reference, out).read_text()
    assert PAYLOAD not in text and html.escape(PAYLOAD) in text
    assert base64.b64encode(b"PRIVATE-KEY-" * 3).decode()[:16] not in text
    assert "Content-Security-Policy" in text and "script-src" not in text  # default-src 'none' forbids scripts


def test_a_planted_payload_runs_no_script_in_a_browser(shipped, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium here (apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    plan, reference, out = shipped
    plant(plan, reference, tmp_path / "secret")
    page_path = site.build(plan, reference, out)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_load_state("load")
        title, planted = page.title(), page.eval_on_selector_all("img[src='x']", "els => els.length")
        shown = page.inner_text("body")
        browser.close()
    assert title == plan.name and planted == 0 and PAYLOAD in shown  # shown as text, never as markup
