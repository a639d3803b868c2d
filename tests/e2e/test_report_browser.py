"""The HTML report in a real browser: Debian's Chromium, driven by Playwright, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("AUDITKIT_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it; CI never skips this)")


def test_report_opens_offline_with_every_image_loaded(tmp_path, sample_dir, jitter_rater_path):
    from playwright.sync_api import sync_playwright

    # A rater that moves candidates both ways: the report must show unstable cells.
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "auditkit", "run", "--rater", str(jitter_rater_path),
                           "--clips", str(sample_dir), "--perturb", "lighting:dim,background:bookshelf",
                           "--out", str(out), "--quiet", "--unit", "clip"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1 and not proc.stderr.strip(), proc.stderr
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1300, "height": 1600})
        page.on("request", lambda r: requests.append(r.url))
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
        svgs = page.eval_on_selector_all("svg", "els => els.length")
        unstable_cells = page.eval_on_selector_all("table.grid td.unstable", "els => els.length")
        moved_column = page.get_by_text("moved beyond margin [bounds]").count()
        title = page.title()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert "auditkit report" in title
    assert len(images) == 2 and all(done and width > 0 for done, width, _ in images), images
    assert svgs == 3  # one plot per condition: the two edits and the retest control
    assert unstable_cells > 0 and moved_column == 1
    # Nothing left the file: the page itself, and inline data only.
    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert not outside, outside
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
