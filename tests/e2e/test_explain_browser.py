"""Where the rater looks, as a reviewer sees it in Chromium: the report's section (bars per trait
and region, the overlays) and the dashboard's heatmap beside a clip's frames, for a run made by
`auditkit run --explain` with a rater whose answer is known (one trait reads the top-left corner,
one the eyes)."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlencode

import pytest

from auditkit.raters import save_torchscript
import test_dashboard_browser
from test_dashboard_browser import ARTIFACTS, CHROMIUM, FLAGS, _no_exception, _settled, serve
from test_explain import CORNER_TRAIT, EYES_TRAIT, SPEC, CornerAndEyes

pytestmark = test_dashboard_browser.pytestmark  # skipped without Chromium, never on CI


@pytest.fixture(scope="module")
def explained_run(tmp_path_factory, sample_dir):
    root = tmp_path_factory.mktemp("explain-browser")
    rater = save_torchscript(CornerAndEyes(), root / "corner.pt", input=SPEC)
    out = root / "runs" / "regions"
    proc = subprocess.run([sys.executable, "-m", "auditkit", "run", "--rater", str(rater), "--clips", str(sample_dir),
                           "--perturb", "region,lighting:dim", "--out", str(out), "--quiet", "--unit", "clip",
                           "--explain"], capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1) and not proc.stderr.strip(), proc.stderr
    assert "explained:" in proc.stdout
    return root, out, json.loads((out / "audit.json").read_text())


def test_the_report_shows_where_the_rater_looks(explained_run):
    from playwright.sync_api import sync_playwright

    _, out, audit = explained_run
    section = audit["attribution"]
    n_overlays = sum(len(t) for t in section["overlays"].values())
    assert n_overlays == len(section["overlays"]) * len(audit["traits"]) > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1400})
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        heading = page.locator("#where-the-rater-looks")
        assert heading.is_visible()
        overlays = page.eval_on_selector_all(
            "figure.overlay img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
        rows = page.locator("table.attribution tr").count()
        bars = dict(page.eval_on_selector_all("table.attribution tr:not(:first-child)", """rows => rows.map(r =>
            [r.querySelector('th').innerText, Object.fromEntries([...r.querySelectorAll('span[title]')].map(
                e => [e.title.split(' ')[0], e.getBoundingClientRect().width]))])"""))
        heading.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "report-where-the-rater-looks.png"))
        browser.close()
    assert len(overlays) == n_overlays and all(done and width > 0 for done, width, _ in overlays), overlays
    assert rows == 1 + len(section["traits"])
    # The corner trait's bar is nearly all background, the eye trait's nearly all face, as drawn.
    assert section["traits"][CORNER_TRAIT]["regions"]["background"]["share"] >= 0.8
    assert section["traits"][EYES_TRAIT]["regions"]["face"]["share"] >= 0.8
    assert bars[CORNER_TRAIT]["background"] >= 0.8 * 240 and bars[EYES_TRAIT]["face"] >= 0.8 * 240
    assert all(sum(row.values()) <= 241 for row in bars.values())
    assert (ARTIFACTS / "report-where-the-rater-looks.png").stat().st_size > 20_000


def test_the_dashboard_shows_a_clips_heatmap_per_trait(explained_run):
    from playwright.sync_api import sync_playwright

    root, out, audit = explained_run
    clip = next(iter(audit["attribution"]["overlays"]))
    query = urlencode({"run": "regions", "page": "Clips", "condition": "region:background",
                       "sort_trait": CORNER_TRAIT, "clip": clip})
    with serve(out.parent, root / "dashboard.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{url}/?{query}")
        _settled(page, "Clips: regions")
        heat = page.locator(f"img[alt='{clip}: {CORNER_TRAIT} attribution']")
        heat.wait_for(state="visible", timeout=60_000)
        assert page.eval_on_selector(f"img[alt='{clip}: {CORNER_TRAIT} attribution']",
                                     "e => e.complete && e.naturalWidth") > 0
        # The frames are beside it, and another trait's heatmap is one click away.
        assert page.locator(f"img[alt='{clip}: original']").count() == 1
        _no_exception(page)
        heat.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "dashboard-heatmap.png"))
        page.get_by_text(EYES_TRAIT, exact=True).last.click()
        page.locator(f"img[alt='{clip}: {EYES_TRAIT} attribution']").wait_for(state="visible", timeout=60_000)
        page.wait_for_url(lambda u: "heat_trait=" + EYES_TRAIT in u, timeout=60_000)  # a link keeps the view
        # The overview counts the lighting edit only, and lists where the rater looks.
        page.locator("[data-testid='stSidebar']").get_by_text("Overview", exact=True).click()
        _settled(page, "Overview: regions")
        grid = page.locator("table.ak-grid")
        grid.wait_for(state="visible", timeout=60_000)
        fairness = [t for t in audit["tests"] if t.get("role", "fairness") == "fairness"]
        assert grid.locator("td[data-verdict]").count() == len(fairness)
        assert page.get_by_text("Where the rater looks", exact=True).count() == 1
        page.get_by_text("region ablation", exact=False).first.wait_for(state="visible", timeout=60_000)
        page.locator("[data-testid='stMultiSelect'] [data-baseweb='tag']").first.wait_for(state="visible",
                                                                                            timeout=60_000)
        assert "region:" not in page.locator("[data-testid='stMarkdownContainer']").filter(
            has_text="shortlist").inner_text()
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-where-it-looks.png"))
        browser.close()
    assert (ARTIFACTS / "dashboard-heatmap.png").stat().st_size > 20_000
