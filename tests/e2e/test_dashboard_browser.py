"""The dashboard as a reviewer meets it: `auditkit dashboard` serving real runs on localhost,
Debian's Chromium driven by Playwright from the verdict grid to a clip and to the comparison."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from auditkit.core.store import Store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("AUDITKIT_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it; CI never skips this)")


def _audit(out: Path, rater: str, sample_dir: Path) -> None:
    # Clips as the unit: the sample set holds two people, too few to decide anything about people.
    proc = subprocess.run([sys.executable, "-m", "auditkit", "run", "--rater", rater, "--clips", str(sample_dir),
                           "--perturb", "lighting:dim,lighting:bright", "--out", str(out), "--quiet",
                           "--unit", "clip"], capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(runs: Path, log_path: Path):
    """`auditkit dashboard RUNS_DIR --port P`, the way a reviewer starts it; yields its URL."""
    port = _free_port()
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "auditkit", "dashboard", str(runs), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not answer on /_stcore/health"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()  # the command forwards it to Streamlit
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what this test started
            proc.wait()
        log.close()


@pytest.fixture
def server(tmp_path, sample_dir, jitter_rater_path):
    """Three real runs served until the test ends."""
    runs = tmp_path / "runs"
    _audit(runs / "jittery", str(jitter_rater_path), sample_dir)  # moves candidates both ways
    time.sleep(1.1)
    _audit(runs / "demo-1" / "before", "builtin:appearance", sample_dir)
    time.sleep(1.1)  # `created` has one-second resolution: "after" must be the newest run
    _audit(runs / "demo-1" / "after", "builtin:constant", sample_dir)
    with serve(runs, tmp_path / "dashboard.log") as url:
        yield url, runs


def _settled(page, text: str) -> None:
    """Wait for a rerun to finish showing ``text`` (Streamlit keeps stale elements meanwhile)."""
    page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    assert "Traceback" not in page.inner_text("body")


def test_grid_to_clip_to_comparison_in_chromium(server):
    from playwright.sync_api import sync_playwright

    url, runs = server
    before = json.loads((runs / "demo-1" / "before" / "audit.json").read_text())
    after = json.loads((runs / "demo-1" / "after" / "audit.json").read_text())
    flips = sum(b["verdict"] != a["verdict"] for b, a in zip(before["tests"], after["tests"]))
    failed: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        # favicon.png is Streamlit's own (Starlette 1.10 answers 500 for it); everything else must load.
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.png") else None)
        page.on("requestfailed", lambda r: failed.append(f"failed {r.url}"))

        # Opens on the newest run's verdict grid.
        page.goto(url)
        grid = page.locator("table.ak-grid")
        grid.wait_for(state="visible", timeout=60_000)
        _settled(page, "Overview: demo-1/after")
        assert grid.locator("td[data-verdict='invariant']").count() == len(after["tests"])
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-overview-after.png"))

        # Pick the run before mitigation in the sidebar.
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
        page.get_by_role("option").filter(has_text="demo-1/before").click()
        _settled(page, "Overview: demo-1/before")
        shift_cells = grid.locator("td[data-verdict='shift']")
        assert shift_cells.count() == sum(t["verdict"] == "shift" for t in before["tests"])
        page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"))

        # Grid cell -> its condition: the CI against the margin band, the numbers.
        grid.locator("a[href*='condition=lighting%3Adim'][href*='sort_trait=extraversion']").click()
        _settled(page, "Condition: demo-1/before")
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for(state="visible", timeout=60_000)
        assert page.locator("[data-testid='stVegaLiteChart']").count() == 2
        assert page.get_by_text("Shift = lighting:dim − original, per clip", exact=False).count() == 1
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-condition.png"))

        # Condition -> its clips sorted by the extraversion shift: both frames, the scores.
        page.get_by_role("button", name="extraversion", exact=True).click()
        _settled(page, "Clips: demo-1/before")
        frames = page.locator("img[alt$=': original'], img[alt$=': lighting:dim']")
        frames.first.wait_for(state="visible", timeout=60_000)
        loaded = page.eval_on_selector_all(
            "img[alt$=': original'], img[alt$=': lighting:dim']", "els => els.map(e => e.complete && e.naturalWidth)")
        assert len(loaded) == 2 and all(loaded), loaded
        with Store.open_readonly(runs / "demo-1" / "before" / "results.sqlite") as store:
            base, dim = store.scores("original", "extraversion"), store.scores("lighting:dim", "extraversion")
        top = max(dim, key=lambda c: abs(dim[c] - base[c]))  # the page opens on the largest |shift|
        assert page.locator(f"img[alt='{top}: original']").count() == 1
        assert "page=Clips" in page.url and "sort_trait=extraversion" in page.url
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-clips.png"))

        # The comparison: the run after mitigation against its sibling before.
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
        page.get_by_role("option").filter(has_text="demo-1/after").click()
        _settled(page, "Clips: demo-1/after")
        page.locator("[data-testid='stSidebar']").get_by_text("Compare", exact=True).click()
        _settled(page, "Compare: demo-1/after")
        page.locator("table.ak-compare").wait_for(state="visible", timeout=60_000)
        assert page.locator("table.ak-compare td[data-flipped='true']").count() == flips
        assert page.get_by_text(f"Verdicts that flipped ({flips})").count() == 1
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-compare.png"))

        # A rater that moves candidates both ways: unstable cells, and their evidence.
        jittery = json.loads((runs / "jittery" / "audit.json").read_text())
        unstable = [t for t in jittery["tests"] if t["verdict"] == "unstable"]
        assert unstable
        page.locator("[data-testid='stSidebar']").get_by_text("Overview", exact=True).click()
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
        page.get_by_role("option").filter(has_text="jittery").click()
        _settled(page, "Overview: jittery")
        assert grid.locator("td[data-verdict='unstable']").count() == len(unstable)
        assert grid.locator("td[data-verdict='unstable']").first.inner_text().count("unstable") == 1
        page.screenshot(path=str(ARTIFACTS / "dashboard-unstable.png"))
        grid.locator("td[data-verdict='unstable'] a").first.click()
        _settled(page, "Condition: jittery")
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for(state="visible", timeout=60_000)
        assert page.get_by_text("most moved beyond it", exact=False).count() == 1
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-unstable-condition.png"))
        browser.close()
    assert not failed, failed
    for name in ("overview", "condition", "clips", "compare", "unstable", "unstable-condition"):
        assert (ARTIFACTS / f"dashboard-{name}.png").stat().st_size > 20_000
