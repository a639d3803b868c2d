"""Soak test of the HTTP rater: a real audit of thousands of tiny clips against a flaky vendor.

A vendor-like endpoint runs in its own process on 127.0.0.1. It fails a share of requests
transiently (503, 429 with ``Retry-After``, or a dropped connection, drawn per request at random)
and rejects some clips permanently (``422 no face detected``): those clips carry a striped band
that survives the lighting edit, so the rejection is a property of the clip, the same on every
retry and for each of its inputs (the original, the edited copy and the ``control:retest`` copy
every audit adds). Everything else is scored from image statistics, as
``builtin:appearance`` does. The audit runs through ``auditkit.run_audit`` with ``lighting:dim``.

Prints and checks: requests made (server and client agree), transient failures seen by kind,
every one of them recovered, the rejected clips are exactly the skipped pairs, no other pair is
missing; then wall time and requests per second. Exits 1 when a check fails.

    python bench/http_soak.py [--clips 2000] [--transient 0.10] [--permanent 0.01] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing as mp
import random
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

SIDE, FRAMES, BAND = 32, 4, 8  # pixels, frames per clip, rows of the bottom band
LETTERS = {"openness": "O", "conscientiousness": "C", "extraversion": "E", "agreeableness": "A",
           "neuroticism": "N"}


# ------------------------------------------------------------------------------------ the clips

def make_clip(index: int, rejected: bool, seed: int) -> np.ndarray:
    """RGB uint8 [T, H, W, 3]: a smooth room and a head-like blob that drifts, distinct per clip,
    over a bottom band that is flat grey, or black-and-white stripes on a clip the vendor rejects."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    wall = rng.uniform(60, 200, 3) + rng.uniform(-40, 40, 3) * xx[..., None] + rng.uniform(-40, 40, 3) * yy[..., None]
    skin = rng.uniform(90, 230, 3)
    frames = []
    for t in range(FRAMES):
        cx, cy = 0.5 + 0.03 * t * rng.choice([-1, 1]), 0.4
        head = (((xx - cx) / 0.22) ** 2 + ((yy - cy) / 0.3) ** 2) < 1
        frame = np.where(head[..., None], skin, wall)
        if rejected:
            frame[-BAND:] = np.where((np.arange(SIDE) // 4 % 2)[None, :, None] == 1, 255.0, 0.0)
        else:
            frame[-BAND:] = rng.uniform(40, 220) if t == 0 else frames[0][-BAND:]
        frames.append(frame)
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def write_clips(folder: Path, n: int, rejected: set[int], seed: int) -> dict[str, bool]:
    import cv2

    ids = {}
    for i in range(n):
        clip_id = f"clip{i:05d}"
        writer = cv2.VideoWriter(str(folder / f"{clip_id}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (SIDE, SIDE))
        for frame in make_clip(i, i in rejected, seed):
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
        writer.release()
        ids[clip_id] = i in rejected
    return ids


# ------------------------------------------------------------------------------------ the vendor

def striped(bgr: np.ndarray) -> bool:
    """The rejected clips' band: columns alternate dark and bright every 4 pixels."""
    profile = bgr[-BAND:].astype(np.float32).mean(axis=(0, 2))
    return float(profile.std()) > 25.0


def appearance_scores(frames: list[np.ndarray]) -> dict[str, float]:
    x = np.stack(frames).astype(np.float32)[..., ::-1] / 255.0  # RGB
    lum = x @ np.array([0.299, 0.587, 0.114], np.float32)
    feats = np.array([lum.mean(), lum.std(), (x.max(-1) - x.min(-1)).mean(), (x[..., 0] - x[..., 2]).mean()])
    weights = np.array([[1.5, 2.0, 1.0, 0.5], [2.0, -1.0, 0.0, -0.5], [2.5, 1.5, 1.5, 1.0],
                        [1.0, -0.5, 0.5, 1.5], [-2.0, 1.0, -0.5, -1.0]])
    scores = 1 / (1 + np.exp(-(weights @ feats + np.array([-1.0, -1.0, -1.5, -0.5, 1.0]))))
    return dict(zip("OCEAN", map(float, scores)))


def serve(port_out, transient: float, retry_after: str, seed: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    rng = random.Random(seed)
    lock = threading.Lock()
    log: list[tuple[str, str]] = []  # (request digest, outcome) in arrival order

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def reply(self, status: int, doc: dict | None, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(doc).encode() if doc is not None else b""
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            with lock:
                self.reply(200, {"log": log})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            digest = hashlib.sha256(body).hexdigest()[:16]
            with lock:
                roll = rng.random()
                kind = rng.choice(["503", "429", "drop"]) if roll < transient else None
            if kind is not None:
                with lock:
                    log.append((digest, f"transient:{kind}"))
                if kind == "drop":
                    self.close_connection = True  # no answer at all: the client sees the socket close
                elif kind == "429":
                    self.reply(429, {"error": "slow down"}, {"Retry-After": retry_after})
                else:
                    self.reply(503, {"error": "overloaded"})
                return
            doc = json.loads(body)
            frames = [cv2.imdecode(np.frombuffer(base64.b64decode(f), np.uint8), cv2.IMREAD_COLOR)
                      for f in doc["frames"]]
            if striped(frames[0]):
                with lock:
                    log.append((digest, "permanent:422"))
                self.reply(422, {"error": "no face detected"})
                return
            with lock:
                log.append((digest, "ok"))
            self.reply(200, {"model": "soak-1", "scores": appearance_scores(frames)})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_out.send(httpd.server_address[1])
    httpd.serve_forever(poll_interval=0.05)


# ------------------------------------------------------------------------------------ the audit

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--transient", type=float, default=0.10, help="share of requests failed transiently")
    parser.add_argument("--permanent", type=float, default=0.01, help="share of clips rejected for good")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64, help="clips per engine batch")
    parser.add_argument("--retries", type=int, default=6)
    parser.add_argument("--retry-after", default="1", help="the Retry-After of the vendor's 429s")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from auditkit import run_audit
    from auditkit.raters import load_rater

    rng = np.random.default_rng(args.seed)
    rejected = set(rng.choice(args.clips, size=round(args.clips * args.permanent), replace=False).tolist())
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=serve, args=(send, args.transient, args.retry_after, args.seed), daemon=True)
    server.start()
    try:
        port = receive.recv()
        with tempfile.TemporaryDirectory(prefix="auditkit-soak-") as tmp:
            folder = Path(tmp, "clips")
            folder.mkdir()
            t0 = time.perf_counter()
            truth = write_clips(folder, args.clips, rejected, args.seed)
            print(f"clips: {args.clips} of {SIDE}x{SIDE} px, {FRAMES} frames, written in "
                  f"{time.perf_counter() - t0:.1f} s; {len(rejected)} carry the band the vendor rejects")
            traits = "\n".join(f'{t} = "scores.{k}"' for t, k in LETTERS.items())
            desc = Path(tmp, "vendor.toml")
            desc.write_text(f'url = "http://127.0.0.1:{port}/v1/score"\nformat = "frames"\nsize = {SIDE}\n'
                            f"frames = {FRAMES}\nfps = 8.0\ntimeout = 10\nretries = {args.retries}\n"
                            f"backoff = 0.05\nmax_backoff = 1.0\nmax_retry_after = 5\n"
                            f"concurrency = {args.concurrency}\n\n[traits]\n{traits}\n")
            rater = load_rater(f"http:{desc}")
            t0 = time.perf_counter()
            result = run_audit(rater, folder, ["lighting:dim"], batch_size=args.batch_size, device="cpu")
            wall = time.perf_counter() - t0
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as response:
                log = json.loads(response.read())["log"]
    finally:
        server.terminate()
        server.join(10)
    return report(args, result, rater, log, truth, wall)


def report(args, result, rater, log: list[list[str]], truth: dict[str, bool], wall: float) -> int:
    outcomes = Counter(outcome for _, outcome in log)
    transient = {k: v for k, v in outcomes.items() if k.startswith("transient:")}
    final: dict[str, str] = {}
    hit: set[str] = set()
    for digest, outcome in log:
        if outcome.startswith("transient:"):
            hit.add(digest)
        final[digest] = outcome
    unrecovered = sorted(d for d in hit if final[d].startswith("transient:"))
    recovered = len(hit) - len(unrecovered)
    doomed = {c for c, bad in truth.items() if bad}
    conditions = sorted({t.perturbation for t in result.tests})  # lighting:dim and control:retest
    inputs_per_clip = 1 + len(conditions)  # the original and one copy per condition
    skipped = {s.clip for s in result.skipped}
    wrong_reason = [s for s in result.skipped
                    if "http: 422 Unprocessable Entity" not in s.reason or "no face detected" not in s.reason]
    expected_n = len(truth) - len(doomed)
    rejected_inputs = len({d for d, o in log if o == "permanent:422"})

    print(f"requests: server saw {len(log)}, client sent {rater.stats['requests']} "
          f"({rater.stats['retries']} retries)")
    print(f"transient failures: {sum(transient.values())} ({len(log) and sum(transient.values()) / len(log):.1%}: "
          + ", ".join(f"{k.split(':')[1]} {v}" for k, v in sorted(transient.items())) + ")")
    print(f"recovered: {recovered} of {len(hit)} inputs that saw a transient failure")
    print(f"permanent: {len(doomed)} clips rejected by design, {rejected_inputs} inputs answered 422, "
          f"{len(result.skipped)} pairs skipped ({', '.join(conditions)})")
    print(f"scored pairs: {result.n_clips} of {len(truth)}; per test n = "
          f"{sorted({t.n for t in result.tests})}")
    print(f"wall time: {wall:.1f} s for the audit; {len(log) / wall:.0f} requests/s, "
          f"{inputs_per_clip * len(truth) / wall:.0f} clip inputs/s")

    checks = [
        ("server and client agree on the number of requests", len(log) == rater.stats["requests"]),
        ("each transient failure was retried", rater.stats["retries"] == sum(transient.values())),
        ("every transient failure recovered", not unrecovered and not [
            s for s in result.skipped if "attempt" in s.reason]),
        ("the vendor rejected every input of each rejected clip, nothing else",
         rejected_inputs == inputs_per_clip * len(doomed) and outcomes.get("permanent:422", 0) == rejected_inputs),
        ("skipped pairs are exactly the rejected clips, once per condition",
         skipped == doomed and len(result.skipped) == len(conditions) * len(doomed)),
        ("each skipped pair names the vendor's 422", not wrong_reason),
        ("no other pair is missing", result.n_clips == expected_n and {t.n for t in result.tests} == {expected_n}),
        ("transient failures happened at all", sum(transient.values()) > 0 or args.transient == 0),
    ]
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    if wrong_reason:
        print("  unexpected skip reasons: " + "; ".join(f"{s.clip}: {s.reason}" for s in wrong_reason[:5]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
