"""How fast the dashboard opens a big run: 1,000 clips x 10 conditions x 5 traits.

Builds a genuine run folder in a temporary directory (a real ``Store`` with every per-clip score
and a stored frame per clip and condition, an ``AuditResult`` from ``auditkit.stats``, the HTML
report) and prints:

- the cold load of the run's data (audit.json, the store's scores, per-clip shifts);
- AppTest's run time of the Overview, Condition and Clips pages, cold and warm;
- the real server (``auditkit dashboard``) in Debian's Chromium: from ``page.goto`` until the
  verdict grid (or the page's chart or frames) is visible, for a first and a second visit;
- for scale, the same measure for a one-line Streamlit app (what any Streamlit page costs here).

The goal is under 3 seconds to open the run. Figures only; nothing is asserted.

    python bench/dashboard_open.py [--clips 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditkit import stats  # noqa: E402
from auditkit.raters import OCEAN  # noqa: E402
from auditkit.core.report import render_html  # noqa: E402
from auditkit.core.result import AuditResult, Skipped  # noqa: E402
from auditkit.core.store import ORIGINAL, Store  # noqa: E402

CONDITIONS = ("glasses:thick", "glasses:round", "background:bookshelf", "background:plain",
              "background:office", "lighting:dim", "lighting:bright", "headwear:scarf",
              "quality:jpeg", "quality:blur")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def build_run(out: Path, n_clips: int, seed: int = 0) -> AuditResult:
    import cv2

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True)
    ids = [f"clip_{i:04d}" for i in range(n_clips)]
    # Frames: one JPEG per condition, reused for every clip: a real portrait at the engine's
    # thumbnail size and quality (256 px, 85), so the store weighs what a real one weighs, without
    # spending the benchmark on encoding 11,000 images.
    from skimage.data import astronaut

    frame = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    jpegs = {c: cv2.imencode(".jpg", np.clip(frame * (0.7 + 0.05 * k), 0, 255).astype(np.uint8),
                             [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
             for k, c in enumerate((ORIGINAL,) + CONDITIONS)}
    effects = rng.normal(0.0, 0.04, (len(CONDITIONS), len(OCEAN)))
    effects[rng.random(effects.shape) < 0.5] = 0.0  # half the cells: no effect at all
    original = rng.uniform(0.3, 0.7, (n_clips, len(OCEAN)))
    skipped = [(ids[i], CONDITIONS[0], "no face found in 9 of 16 frames") for i in range(0, n_clips, 97)]
    skip = {(c, p) for c, p, _ in skipped}
    with Store(out / "results.sqlite") as store:
        for i, cid in enumerate(ids):
            store.add_clip(cid, path=f"{cid}.mp4", content_hash=f"h{i}", frames=16, fps=25.0,
                           metadata={"group": "a" if i % 2 else "b"})
            store.add_scores(cid, ORIGINAL, OCEAN, original[i])
            store.add_thumb(cid, ORIGINAL, jpegs[ORIGINAL])
            for k, cond in enumerate(CONDITIONS):
                if (cid, cond) in skip:
                    store.add_skipped(cid, cond, "no face found in 9 of 16 frames")
                    continue
                store.add_scores(cid, cond, OCEAN, original[i] + effects[k] + rng.normal(0, 0.02, len(OCEAN)))
                store.add_thumb(cid, cond, jpegs[cond])
        tests = []
        for cond in CONDITIONS:
            for trait in OCEAN:
                before, after = store.scores(ORIGINAL, trait), store.scores(cond, trait)
                paired = sorted(before.keys() & after.keys())
                tests.append(stats.paired_shift_test(np.array([before[c] for c in paired]),
                                                     np.array([after[c] for c in paired]),
                                                     margin=0.05, perturbation=cond, trait=trait))
        result = AuditResult(
            rater={"spec": "bench:synthetic", "hash": "sha256:" + "0" * 64,
                   "input": {"size": [112, 112], "frames": 8}},
            traits=OCEAN, n_clips=n_clips,
            config={"margin": 0.05, "alpha": 0.05, "correction": "holm", "clips": "synthetic",
                    "n_clips_found": n_clips},
            tests=stats.correct(tests, method="holm"),
            skipped=tuple(Skipped(c, p, r) for c, p, r in skipped),
            created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat())
        shifts = store.shifts(result)
    import json

    (out / "audit.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "report.html").write_text(render_html(result, {}, shifts=shifts), encoding="utf-8")
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


def bench_data(runs: Path, name: str) -> None:
    import streamlit as st

    from auditkit.dashboard import data

    st.cache_data.clear()
    t0 = time.perf_counter()
    result = data.load_result(runs, name)
    t1 = time.perf_counter()
    frame = data.scores(runs, name)
    t2 = time.perf_counter()
    shifts = data.shifts(runs, name, result)
    t3 = time.perf_counter()
    data.shifts(runs, name, result)
    t4 = time.perf_counter()
    print(f"data, cold: audit.json {_ms(t1 - t0)} | store scores ({len(frame):,} rows) {_ms(t2 - t1)} | "
          f"per-clip shifts ({len(shifts):,} rows) {_ms(t3 - t2)} | shifts again (cached) {_ms(t4 - t3)}")


def bench_apptest(runs: Path) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["AUDITKIT_RUNS_DIR"] = str(runs)
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    for label, page in (("Overview, cold", "Overview"), ("Overview, warm", "Overview"),
                        ("Condition, cold", "Condition"), ("Condition, warm", "Condition"),
                        ("Clips, first", "Clips"), ("Clips, again", "Clips"), ("Compare", "Compare")):
        t0 = time.perf_counter()
        if "page" in at.session_state:
            at.radio(key="page").set_value(page)
        at.run()
        took = time.perf_counter() - t0
        assert not at.exception, [e.value for e in at.exception]
        print(f"AppTest {label:16s} {_ms(took)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_browser(runs: Path, n_tests: int) -> None:
    if not Path(CHROMIUM).exists():
        print("browser: skipped (Debian's chromium is not installed)")
        return
    from playwright.sync_api import sync_playwright

    port = _free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "auditkit", "dashboard", str(runs), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                time.sleep(0.2)
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                log.seek(0)
                print("browser: the server did not start:\n" + log.read().decode(errors="replace"))
                return
        print(f"server: healthy after {_ms(time.perf_counter() - t0)}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            cells = page.locator("table.ak-grid td[data-verdict]")
            sidebar = page.get_by_text("Counterfactual fairness audit: where the rater moves")
            for visit in ("first visit: browser and server cold", "second visit: both warm"):
                t0 = time.perf_counter()
                page.goto(url)
                sidebar.wait_for(state="visible", timeout=120_000)
                t1 = time.perf_counter()
                cells.nth(n_tests - 1).wait_for(state="visible", timeout=120_000)
                t2 = time.perf_counter()
                print(f"browser, {visit}: goto -> verdict grid visible ({n_tests} cells) {_ms(t2 - t0)} "
                      f"(first element of the app at {_ms(t1 - t0).strip()})")
            with browser.new_context(viewport={"width": 1400, "height": 1200}) as fresh:
                t0 = time.perf_counter()
                other = fresh.new_page()
                other.goto(url)
                other.locator("table.ak-grid td[data-verdict]").nth(n_tests - 1).wait_for(
                    state="visible", timeout=120_000)
                print(f"browser, new reviewer (empty browser cache, server warm): goto -> verdict grid visible "
                      f"{_ms(time.perf_counter() - t0)}")
            cond = "lighting:dim"
            for visit in ("first", "second"):
                t0 = time.perf_counter()
                page.goto(f"{url}/?page=Condition&condition={cond}")
                page.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg") \
                    .first.wait_for(state="visible", timeout=120_000)
                print(f"browser: goto -> Condition chart visible, {visit}: {_ms(time.perf_counter() - t0)}")
            for visit in ("first", "second"):
                t0 = time.perf_counter()
                page.goto(f"{url}/?page=Clips&condition={cond}")
                page.locator("img[alt$=': original']").wait_for(state="visible", timeout=120_000)
                print(f"browser: goto -> Clips frames visible, {visit}: {_ms(time.perf_counter() - t0)}")
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def bench_floor() -> None:
    """Streamlit's own floor on this machine: a one-line app, each visit in an empty browser."""
    if not Path(CHROMIUM).exists():
        return
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "hello.py").write_text('import streamlit as st\nst.write("hello world")\n')
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "hello.py", "--server.headless", "true",
                                 "--server.address", "127.0.0.1", "--server.port", str(port),
                                 "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                                cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 60:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                        break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                for visit in ("server cold", "server warm"):
                    with browser.new_context() as context:
                        page = context.new_page()
                        t0 = time.perf_counter()
                        page.goto(f"http://127.0.0.1:{port}")
                        page.get_by_text("hello world").wait_for(state="visible", timeout=60_000)
                        print(f"floor: a one-line Streamlit app, empty browser cache, {visit}: "
                              f"{_ms(time.perf_counter() - t0)}")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--keep", help="build the run folder here and keep it")
    args = parser.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="auditkit-dash-bench-"))
    runs = tmp / "runs"
    try:
        t0 = time.perf_counter()
        result = build_run(runs / "big", args.clips)
        size = sum(p.stat().st_size for p in (runs / "big").iterdir() if p.is_file())
        print(f"built a run of {args.clips} clips x {len(CONDITIONS)} conditions x {len(OCEAN)} traits "
              f"({len(result.tests)} tests, {size / 1e6:.1f} MB on disk) in {time.perf_counter() - t0:.1f} s")
        bench_data(runs, "big")
        bench_apptest(runs)
        bench_browser(runs, len(result.tests))
        bench_floor()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
