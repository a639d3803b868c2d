"""The HTTP rater against a real vendor-like server on 127.0.0.1 that can be told to misbehave.

Rows in these tests are flat grey clips; the server recognises a row by its grey level (rounded
to a multiple of 10, which survives JPEG and MP4) and looks up what to do in its script.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.parser
import json
import pickle
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from auditkit.contract.errors import PartialScores, RaterError
from auditkit.raters.http_rater import InsecureEndpointWarning, load_description, parse_retry_after
from auditkit.raters import OCEAN, load_rater, rater_identity

TOKEN = "s3cret-Token-7f1c"
LETTERS = {"openness": "O", "conscientiousness": "C", "extraversion": "E", "agreeableness": "A",
           "neuroticism": "N"}


def expected(level: int) -> list[float]:
    v = level / 255
    return [v, 1 - v, v / 2, 0.25, 0.75]


def _decode_mp4(data: bytes) -> list[np.ndarray]:
    import cv2

    with tempfile.NamedTemporaryFile(suffix=".mp4") as fh:
        fh.write(data)
        fh.flush()
        cap = cv2.VideoCapture(fh.name)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
    return frames


class Vendor:
    """A scoring endpoint. ``script(level, n)`` says what to do with the n-th request (0-based)
    for a row of that grey level: ``"ok"``, ``("status", code, headers, body)``, ``"drop"`` (close
    without answering), ``"slow"`` (answer only at teardown), ``"badjson"``, ``"missing"``,
    ``"text"`` (a string where a number belongs) or ``"echo"`` (a 400 quoting the credential)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.script: Callable[[int, int], Any] = lambda level, n: "ok"
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Condition()
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = 0  # hold each request until this many are in flight (then let all through)
        self.release = threading.Event()
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                vendor._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}/v1/score"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_for(self, level: int) -> list[dict[str, Any]]:
        return [r for r in self.log if r["level"] == level]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        frames = self._frames(h.headers.get("Content-Type", ""), body)
        level = int(10 * round(float(np.mean(frames[0])) / 10))
        with self.lock:
            n = len(self.requests_for(level))
            self.log.append({"t": time.monotonic(), "level": level, "headers": dict(h.headers),
                             "n_frames": len(frames), "shape": frames[0].shape, "body": body})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.lock.notify_all()
            if self.gate:
                self.lock.wait_for(lambda: self.max_in_flight >= self.gate, timeout=10)
        try:
            if self.gate:
                time.sleep(0.05)  # stay in flight long enough for an over-limit request to show up
            self._answer(h, self.script(level, n), level)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _frames(self, content_type: str, body: bytes) -> list[np.ndarray]:
        import cv2

        if content_type == "application/json":
            doc = json.loads(body)
            assert isinstance(doc["fps"], float)
            return [cv2.imdecode(np.frombuffer(base64.b64decode(f), np.uint8), cv2.IMREAD_COLOR)
                    for f in doc["frames"]]
        if content_type == "video/mp4":
            return _decode_mp4(body)
        if content_type.startswith("multipart/form-data"):
            msg = email.parser.BytesParser().parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + body)
            (part,) = msg.get_payload()
            assert part.get_param("name", header="content-disposition") == "upload"
            assert part.get_content_type() == "video/mp4"
            return _decode_mp4(part.get_payload(decode=True))
        raise AssertionError(f"unexpected content type {content_type!r}")

    def _answer(self, h: BaseHTTPRequestHandler, action: Any, level: int) -> None:
        v = level / 255
        scores = {"O": v, "C": 1 - v, "E": v / 2, "A": 0.25, "N": 0.75}
        ok = {"scores": scores, **{t: scores[k] for t, k in LETTERS.items()}}
        if action == "drop":
            h.close_connection = True
            return
        if action == "slow":
            self.release.wait(10)
            action = "ok"
        status, headers, body = 200, {"Content-Type": "application/json"}, b""
        if action == "ok":
            body = json.dumps(ok).encode()
        elif action == "badjson":
            body = b"<html>upstream error</html>"
        elif action == "missing":
            body = json.dumps({"scores": {"O": v}}).encode()
        elif action == "text":
            body = json.dumps({"scores": {**scores, "E": "high"}}).encode()
        elif action == "echo":
            status, body = 400, f"rejected, you sent {h.headers.get('Authorization')}".encode()
        else:
            _, status, headers, body = action
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


@pytest.fixture
def vendor():
    server = Vendor()
    yield server
    server.close()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def describe(tmp_path: Path, url: str, /, *, name: str = "vendor.toml", **keys: Any) -> Path:
    """A description file; defaults suit the tests (small frames, fast backoff)."""
    data = {"url": url, "size": 32, "frames": 2, "backoff": 0.01, "max_backoff": 0.05, "timeout": 5,
            "retries": 3, "traits": {t: f"scores.{k}" for t, k in LETTERS.items()}}
    data.update(keys)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / name
    path.write_text("\n".join(f"{k} = {toml_value(v)}" for k, v in data.items()) + "\n")
    return path


def rows(*levels: int, frames: int = 2, size: int = 32) -> torch.Tensor:
    return torch.stack([torch.full((frames, 3, size, size), level / 255) for level in levels])


def partial(rater, x) -> PartialScores:
    with pytest.raises(PartialScores) as info:
        rater(x)
    return info.value


# --------------------------------------------------------------------------------------- happy paths


def recording(level: int, frames: int = 2, size: int = 32) -> bytes:
    """A short MP4 recording of a grey picture with a tone, as format 'video' sends."""
    from auditkit.media.recording import recording_bytes, write_recording

    grey = np.full((size, size, 3), level, np.uint8)
    tone = (0.3 * np.sin(np.arange(1600) / 16000 * 2 * np.pi * 440))[None].astype(np.float32)
    return recording_bytes(lambda out: write_recording(out, [(i / 10, grey) for i in range(frames)], fps=10,
                                                       sound_from=None, window=(0, frames / 10), sound=(tone, 16000)))


@pytest.mark.parametrize("fmt", ["frames", "video", "multipart"])
def test_scores_come_back_in_trait_order_for_every_format(tmp_path, vendor, fmt):
    if fmt == "frames":
        rater = load_rater(f"http:{describe(tmp_path, vendor.url, format='frames')}")
        assert rater.trait_names == OCEAN and rater.input.size == (32, 32) and rater.input.frames == 2
        out = rater(rows(100, 150, 200))
    else:  # the recordings a video audit renders (tests/test_vendor_video.py sends real ones)
        keys = {"video_field": "upload"} if fmt == "multipart" else {}
        rater = load_rater(f"http:{describe(tmp_path, vendor.url, format='video', size=None, frames=None, **keys)}")
        assert rater.recording is not None
        out = rater.score_recordings([recording(100), recording(150), recording(200)])
    torch.testing.assert_close(out, torch.tensor([expected(100), expected(150), expected(200)]), atol=0.005, rtol=0)
    assert {r["n_frames"] for r in vendor.log} == {2} and {r["shape"] for r in vendor.log} == {(32, 32, 3)}


def test_trait_paths_can_be_arrays_and_reach_into_lists(tmp_path, vendor):
    desc = describe(tmp_path, vendor.url, traits={"warmth": ["scores", "A"], "calm": "scores.N"})
    rater = load_rater(f"http:{desc}")
    assert rater.trait_names == ("warmth", "calm")
    torch.testing.assert_close(rater(rows(50)), torch.tensor([[0.25, 0.75]]))


def test_bare_url_spec_uses_defaults(vendor):
    rater = load_rater(vendor.url)
    assert rater.trait_names == OCEAN and rater.input.size == (224, 224) and rater.input.frames == 16
    assert rater.name == vendor.url
    torch.testing.assert_close(rater(rows(120, frames=16, size=224)), torch.tensor([expected(120)]))


# --------------------------------------------------------------------------------------- retries


@pytest.mark.parametrize("failure", [
    ("status", 503, {}, b""), ("status", 502, {}, b"bad gateway"), ("status", 429, {}, b""),
    ("status", 408, {}, b""), "drop",
])
def test_transient_failures_are_retried_until_they_recover(tmp_path, vendor, failure):
    vendor.script = lambda level, n: failure if n < 2 else "ok"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url)}")
    torch.testing.assert_close(rater(rows(100)), torch.tensor([expected(100)]))
    assert len(vendor.requests_for(100)) == 3
    assert rater.stats["retries"] == 2 and rater.stats["requests"] == 3


def test_timeout_is_a_transient_failure(tmp_path, vendor):
    vendor.script = lambda level, n: "slow" if n == 0 else "ok"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, timeout=0.3)}")
    torch.testing.assert_close(rater(rows(100)), torch.tensor([expected(100)]))
    assert len(vendor.requests_for(100)) == 2


def test_a_row_that_never_recovers_fails_with_the_last_reason(tmp_path, vendor):
    vendor.script = lambda level, n: ("status", 503, {}, b"") if level == 100 else "ok"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, retries=2)}")
    exc = partial(rater, rows(50, 100))
    assert exc.failures == {1: "http: 503 Service Unavailable after 3 attempts"}
    torch.testing.assert_close(exc.scores[0], torch.tensor(expected(50)))
    assert torch.isnan(exc.scores[1]).all()  # never zeros
    assert len(vendor.requests_for(100)) == 3


def test_slow_answers_past_the_timeout_fail_the_row(tmp_path, vendor):
    vendor.script = lambda level, n: "slow"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, timeout=0.2, retries=0)}")
    exc = partial(rater, rows(100))
    assert exc.failures == {0: "http: no answer within the timeout (0.2 s) after 1 attempt"}


def test_retry_after_is_honoured(tmp_path, vendor):
    vendor.script = lambda level, n: ("status", 429, {"Retry-After": "1"}, b"") if n == 0 else "ok"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url)}")
    torch.testing.assert_close(rater(rows(100)), torch.tensor([expected(100)]))
    first, second = vendor.requests_for(100)
    assert second["t"] - first["t"] >= 1.0


def test_retry_after_is_capped_by_max_retry_after(tmp_path, vendor):
    vendor.script = lambda level, n: ("status", 503, {"Retry-After": "3600"}, b"") if n == 0 else "ok"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, max_retry_after=0.2)}")
    torch.testing.assert_close(rater(rows(100)), torch.tensor([expected(100)]))
    first, second = vendor.requests_for(100)
    assert second["t"] - first["t"] >= 0.2


def test_retry_after_parsing():
    now = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc).timestamp()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("Sun, 01 Mar 2026 12:01:00 -0000", now=now) == 60.0
    assert parse_retry_after("-5") == 0.0
    for unreadable in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(unreadable) is None


@pytest.mark.parametrize("status,phrase", [(400, "Bad Request"), (415, "Unsupported Media Type"),
                                           (422, "Unprocessable Entity"), (501, "Not Implemented")])
def test_client_errors_are_permanent_and_not_retried(tmp_path, vendor, status, phrase):
    vendor.script = lambda level, n: ("status", status, {}, b'{"error": "no face found"}') if level == 100 else "ok"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url)}")
    exc = partial(rater, rows(100, 150))
    assert exc.failures == {0: f'http: {status} {phrase} ({{"error": "no face found"}})'}
    torch.testing.assert_close(exc.scores[1], torch.tensor(expected(150)))
    assert len(vendor.requests_for(100)) == 1


def test_all_rows_failing_is_still_partial_scores(tmp_path, vendor):
    vendor.script = lambda level, n: ("status", 400, {}, b"")
    rater = load_rater(f"http:{describe(tmp_path, vendor.url)}")
    exc = partial(rater, rows(50, 100, 150))
    assert sorted(exc.failures) == [0, 1, 2] and torch.isnan(exc.scores).all()
    assert rater.stats["rows_failed"] == 3


@pytest.mark.parametrize("action,reason", [
    ("badjson", "http: response is not JSON (starts '<html>upstream error</html>')"),
    ("missing", "http: response has no 'scores.C' for trait conscientiousness ('C' missing at scores; "
                "keys there: O)"),
    ("text", "http: response 'scores.E' for trait extraversion is \"high\", not a finite number"),
])
def test_unusable_responses_fail_the_row_with_a_clear_reason(tmp_path, vendor, action, reason):
    vendor.script = lambda level, n: action
    rater = load_rater(f"http:{describe(tmp_path, vendor.url)}")
    assert partial(rater, rows(100)).failures == {0: reason}
    assert len(vendor.requests_for(100)) == 1


@pytest.mark.parametrize("status,message", [
    (401, "401 Unauthorized: the credential was refused"), (404, "404 Not Found: the URL does not exist"),
    (302, "a redirect to https://elsewhere.example/score"),
])
def test_misconfiguration_stops_the_audit_instead_of_skipping_everything(tmp_path, vendor, status, message):
    vendor.script = lambda level, n: ("status", status, {"Location": "https://elsewhere.example/score"}, b"")
    rater = load_rater(f"http:{describe(tmp_path, vendor.url)}")
    with pytest.raises(RaterError, match=message):
        rater(rows(100))


def test_concurrency_limit_is_respected(tmp_path, vendor):
    vendor.gate = 2
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, concurrency=2)}")
    levels = [40, 60, 80, 100, 120, 140, 160]
    torch.testing.assert_close(rater(rows(*levels)), torch.tensor([expected(v) for v in levels]))
    assert vendor.max_in_flight == 2


# --------------------------------------------------------------------------------------- credentials


def test_token_is_sent_in_the_header_and_never_shown(tmp_path, vendor, monkeypatch):
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN)
    vendor.script = lambda level, n: "echo" if level == 100 else "ok"
    spec = f"http:{describe(tmp_path, vendor.url, token_env='VENDOR_TOKEN')}"
    rater = load_rater(spec)
    exc = partial(rater, rows(50, 100))
    assert {r["headers"]["Authorization"] for r in vendor.log} == {f"Bearer {TOKEN}"}
    assert exc.failures[1] == "http: 400 Bad Request (rejected, you sent Bearer <redacted>)"
    shown = [repr(rater), str(rater), rater.name, rater.identity, json.dumps(rater_identity(rater)),
             str(exc), repr(exc.failures), repr(vars(rater))]
    assert not [s for s in shown if TOKEN in s]
    vendor.script = lambda level, n: ("status", 401, {}, f"bad token {TOKEN}".encode())
    with pytest.raises(RaterError) as info:
        rater(rows(150))
    assert TOKEN not in str(info.value) and "$VENDOR_TOKEN" in str(info.value)


def test_custom_header_template(tmp_path, vendor, monkeypatch):
    monkeypatch.setenv("ACME_KEY", TOKEN)
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, token_env='ACME_KEY', header='X-Api-Key: {token}')}")
    rater(rows(100))
    (request,) = vendor.log
    assert request["headers"]["X-Api-Key"] == TOKEN and "Authorization" not in request["headers"]


def test_identity_leaves_out_the_credential_and_transport_settings(tmp_path, vendor, monkeypatch):
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN)
    base = load_rater(f"http:{describe(tmp_path, vendor.url, name='a.toml')}").identity
    tuned = load_rater(f"http:{describe(tmp_path, vendor.url, name='b.toml', token_env='VENDOR_TOKEN', retries=9, timeout=1, concurrency=8)}").identity  # noqa: E501
    other = load_rater(f"http:{describe(tmp_path, vendor.url + '2', name='c.toml')}").identity
    assert base == tuned != other and base.startswith("sha256:")


def test_pickled_rater_leaves_the_token_behind_and_reads_it_again(tmp_path, vendor, monkeypatch):
    # What a Ray actor receives when the audit is given a rater object rather than a spec.
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN)
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, token_env='VENDOR_TOKEN')}")
    rater(rows(100))  # threads and a kept-alive connection exist now
    data = pickle.dumps(rater)
    assert TOKEN.encode() not in data
    copy = pickle.loads(data)
    assert copy.name == rater.name and copy.identity == rater.identity
    torch.testing.assert_close(copy(rows(120)), torch.tensor([expected(120)]))
    assert vendor.log[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    monkeypatch.delenv("VENDOR_TOKEN")
    with pytest.raises(RaterError, match="VENDOR_TOKEN"):
        pickle.loads(data)


def test_missing_token_variable_is_named(tmp_path, vendor, monkeypatch):
    monkeypatch.delenv("VENDOR_TOKEN", raising=False)
    desc = describe(tmp_path, vendor.url, token_env="VENDOR_TOKEN")
    with pytest.raises(RaterError, match=r"vendor.toml: environment variable VENDOR_TOKEN \(token_env\) is not set"):
        load_rater(f"http:{desc}")


def test_token_with_a_line_break_is_refused_without_quoting_it(tmp_path, vendor, monkeypatch):
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN + "\nX-Evil: 1")
    with pytest.raises(RaterError, match="cannot go in an HTTP header") as info:
        load_rater(f"http:{describe(tmp_path, vendor.url, token_env='VENDOR_TOKEN')}")
    assert TOKEN not in str(info.value)


# --------------------------------------------------------------------------------------- TLS


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is available to make a test CA")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        return cert, key
    import ipaddress

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditkit test CA")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


@pytest.fixture
def tls_vendor(tmp_path):
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Vendor(tls=context)
    yield server, cert
    server.close()


def test_tls_is_verified_and_a_private_ca_can_be_trusted(tmp_path, tls_vendor, monkeypatch):
    server, cert = tls_vendor
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN)
    untrusted = load_rater(f"http:{describe(tmp_path, server.url, name='a.toml', token_env='VENDOR_TOKEN')}")
    with pytest.raises(RaterError, match="TLS certificate of 127.0.0.1 does not verify.*set ca_bundle"):
        untrusted(rows(100))
    assert server.log == []  # the request (and the token) never left the client
    shutil.copy(cert, tmp_path / "private-ca.pem")
    trusted = load_rater(f"http:{describe(tmp_path, server.url, name='b.toml', ca_bundle='private-ca.pem')}")
    torch.testing.assert_close(trusted(rows(100)), torch.tensor([expected(100)]))


def test_verify_false_works_but_warns(tmp_path, tls_vendor):
    server, _ = tls_vendor
    with pytest.warns(InsecureEndpointWarning, match="verify = false"):
        rater = load_rater(f"http:{describe(tmp_path, server.url, verify=False)}")
    torch.testing.assert_close(rater(rows(100)), torch.tensor([expected(100)]))


def test_plain_http_warns_once_unless_loopback(tmp_path, recwarn):
    for _ in range(2):
        load_rater("http://scores.invalid/v1")
    assert [str(w.message) for w in recwarn if w.category is InsecureEndpointWarning] == [
        "rater 'http://scores.invalid/v1': http://scores.invalid/v1 is plain http: clips cross the network "
        "unencrypted"]
    load_rater("http://localhost:9/v1")
    load_rater("http://127.0.0.1:9/v1")
    assert sum(w.category is InsecureEndpointWarning for w in recwarn) == 1


def test_connection_refused_fails_the_row_after_retries(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port is closed again: nothing listens there.
    rater = load_rater(f"http:{describe(tmp_path, f'http://127.0.0.1:{port}/v1', retries=1)}")
    exc = partial(rater, rows(100))
    assert exc.failures[0].startswith("http: connection failed (ConnectionRefusedError")
    assert exc.failures[0].endswith("after 2 attempts")


# --------------------------------------------------------------------------------------- descriptions


@pytest.mark.parametrize("keys,message", [
    ({"url": None}, "key 'url' is required"),
    ({"url": "ftp://host/x"}, "key 'url' must be http(s)://host/path"),
    ({"url": "https://user:pw@host/x"}, "key 'url' must not hold credentials"),
    ({"url": "https://host:port/x"}, "key 'url' is not a valid URL"),
    ({"format": "gif"}, "key 'format' must be 'frames' or 'video', got 'gif'"),
    ({"traits": {}}, "key 'traits' must be a table"),
    ({"traits": {"openness": 3}}, "key 'traits' entry 'openness' must be a dotted path"),
    ({"traits": {"openness": "scores..O"}}, "key 'traits' entry 'openness' has an empty step"),
    ({"size": "big"}, "key 'size' must be a whole number or [height, width], got 'big'"),
    ({"size": 4}, "key 'size' does not fit"),
    ({"size": 33, "format": "video"}, "key 'size' only applies to format 'frames' (format 'video' sends the "
                                      "recording: it is sent at its own size; cap it with max_side)"),
    ({"frames": 8, "format": "video", "size": None}, "key 'frames' only applies to format 'frames'"),
    ({"max_side": 320}, "key 'max_side' only applies to format 'video'"),
    ({"seconds": 3}, "key 'seconds' only applies to format 'video'"),
    ({"max_side": 8, "format": "video", "size": None, "frames": None}, "key 'max_side' must be a whole number >= 16"),
    ({"frames": 0}, "key 'frames' must be a whole number >= 1, got 0"),
    ({"timeout": 0}, "key 'timeout' must be a positive number, got 0"),
    ({"retries": -1}, "key 'retries' must be a whole number >= 0"),
    ({"retries": 1.5}, "key 'retries' must be a whole number >= 0"),
    ({"backoff": 10, "max_backoff": 1}, "key 'backoff' (10 s) is larger than max_backoff (1 s)"),
    ({"concurrency": 0}, "key 'concurrency' must be a whole number >= 1"),
    ({"jpeg_quality": 101}, "key 'jpeg_quality' must be a whole number from 1 to 100"),
    ({"jpeg_quality": 80, "format": "video", "size": None, "frames": None},
     "key 'jpeg_quality' only applies to format 'frames'"),
    ({"video_field": "file"}, "key 'video_field' only applies to format 'video'"),
    ({"token_env": "Bearer abc.def"}, "key 'token_env' must be the NAME of an environment variable"),
    ({"header": "X-Key: {token}"}, "key 'header' needs token_env"),
    ({"token_env": "T", "header": "X-Key: abc"}, "key 'header' must look like 'Name: text {token} text'"),
    ({"ca_bundle": "nowhere.pem"}, "key 'ca_bundle' names *nowhere.pem, which does not exist"),
    ({"verify": "no"}, "key 'verify' must be true or false"),
    ({"token": "abc"}, "unknown key(s) 'token'; allowed: url, format"),
])
def test_bad_descriptions_name_the_file_and_key(tmp_path, keys, message):
    desc = describe(tmp_path, "https://scores.example/v1", **keys)
    with pytest.raises(RaterError) as info:
        load_description(desc)
    text = str(info.value)
    assert text.startswith(f"{desc}: ") and "\n" not in text
    assert all(part in text for part in message.split("*")), text


def test_unreadable_description_files(tmp_path):
    with pytest.raises(RaterError, match="missing.toml: HTTP rater description file does not exist"):
        load_rater(f"http:{tmp_path / 'missing.toml'}")
    bad = tmp_path / "bad.toml"
    bad.write_text("url = \n")
    with pytest.raises(RaterError, match="bad.toml: not valid TOML"):
        load_rater(f"http:{bad}")
    with pytest.raises(RaterError, match="give http:PATH.toml"):
        load_rater("https:vendor.toml")


# --------------------------------------------------------------------------------------- the audit


def test_audit_through_http_lists_failed_pairs_as_skipped(tmp_path, vendor):
    from auditkit import run_audit
    from auditkit.media.clips import Clip

    # Originals are 200..250 grey; their dimmed copies land near 120..160, so levels never collide.
    levels = [200, 210, 220, 230, 240, 250]
    clips = [Clip.from_frames(f"c{v}", np.full((4, 32, 32, 3), v, np.uint8), fps=8.0) for v in levels]
    vendor.script = lambda level, n: (("status", 422, {}, b"no face found") if level == 230
                                      else ("status", 503, {}, b"") if level == 210 and n == 0 else "ok")
    desc = describe(tmp_path, vendor.url, frames=4)
    result = run_audit(f"http:{desc}", clips, ["lighting:dim"], batch_size=4, device="cpu", retest=False)
    assert [(s.clip, s.perturbation) for s in result.skipped] == [("c230", "lighting:dim")]
    assert "http: 422 Unprocessable Entity (no face found)" in result.skipped[0].reason
    assert result.n_clips == 5 and {t.n for t in result.tests} == {5}
    assert result.rater["spec"] == f"http:{desc}"
    assert len(vendor.requests_for(210)) == 2 and len(vendor.requests_for(230)) == 1
