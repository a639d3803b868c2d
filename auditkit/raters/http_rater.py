"""HTTP rater: a vendor's black-box scoring endpoint, audited over the network.

Each clip of a batch becomes one ``POST``; up to ``concurrency`` of them are in flight at once.
The request is either the clip's sampled frames as JPEGs in JSON (``format = "frames"``) or an
MP4 file (``format = "video"``, the raw body, or a multipart upload when ``video_field`` is set).
The response is JSON; ``traits`` maps each trait to a path in it (``"scores.O"``).

Failures are sorted by whether trying again can help: connection errors, timeouts, ``408``,
``429`` and ``5xx`` (but ``501``, ``505``) are retried with exponential backoff (``Retry-After`` honoured up to
``max_retry_after``); any other answer fails that clip at once. A clip whose request finally
fails is reported through :class:`auditkit.errors.PartialScores`, so the audit lists the pair in
``skipped`` with the reason; it is never scored as zero. Answers that say the whole endpoint is
misconfigured (a redirect, ``401``/``403``/``404``/``405``/``407``, a TLS certificate that does
not verify) stop the audit with a :class:`RaterError` instead of skipping every pair.

The credential comes from an environment variable named in the description (``token_env``),
never from the command line; it is kept out of every message, repr, identity and log line.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import logging
import math
import os
import random
import re
import socket
import ssl
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from queue import Empty, LifoQueue
from typing import Any, Mapping, NamedTuple
from urllib.parse import urlsplit

import numpy as np
import torch

from auditkit.contract.errors import ConfigError, PartialScores, RaterError
from auditkit.contract.params import Flag, Maybe, Number, OneOf, Rule, Table, Text, check
from auditkit.contract.rater import OCEAN, InputSpec
from auditkit.contract.toml import read_toml

log = logging.getLogger("auditkit.http")

FORMATS = ("frames", "video")
DEFAULT_HEADER = "Authorization: Bearer {token}"
# Answers that would come back the same for every clip: retrying or skipping pair by pair would
# only hide a wrong URL or credential behind thousands of identical skipped lines.
FATAL_STATUS = {401: "the credential was refused", 403: "the credential is not allowed to use this endpoint",
                404: "the URL does not exist", 405: "the endpoint does not accept POST",
                407: "a proxy wants credentials"}

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InsecureEndpointWarning(UserWarning):
    """Clips (and any credential) travel where others could read or alter them."""


# ------------------------------------------------------------------------------ the description


@dataclass(frozen=True)
class _Size(Rule):
    what = "a whole number or [height, width]"

    def __call__(self, value: Any) -> Any:
        sides = value if isinstance(value, (list, tuple)) and len(value) == 2 else [value]
        if any(isinstance(s, bool) or not isinstance(s, int) for s in sides):
            raise self.refuse(value)
        return tuple(sides) if len(sides) == 2 else value


@dataclass(frozen=True)
class _TraitPath(Rule):
    what = "a dotted path string or an array of keys"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(value.split("."))
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(s, (str, int)) and not isinstance(s, bool) for s in value):
            return tuple(str(s) for s in value)  # an array spells keys that contain dots
        raise self.refuse(value)


def _whole(low: int, high: int | None = None) -> Number:
    allowed = f"from {low} to {high}" if high is not None else f">= {low}"
    return Number(low, high, integer=True, text=f"a whole number {allowed}")


class _Key(NamedTuple):
    rule: Rule
    default: Any
    help: str


_POSITIVE = Number(0.0, low_open=True, text="a positive number")
_NON_NEGATIVE = Number(0.0, text="a non-negative number")
# Every key of a description, declared once: its rule, its default and what it means.
_KEYS: dict[str, _Key] = {
    "url": _Key(Maybe(Text()), None, "the endpoint, https://host/path (required)"),
    "format": _Key(OneOf(FORMATS, text="'frames' or 'video'"), "frames", "'frames' (JPEGs in JSON) or 'video' (MP4)"),
    "traits": _Key(Maybe(Table(_TraitPath(), "a table mapping each trait name to the path of its score, "
                                             "e.g. openness = \"scores.O\"", empty_ok=False)),
                   None, "table: trait name -> path of its score in the JSON response (default: OCEAN names)"),
    "size": _Key(_Size(), 224, "frame size sent, N or [height, width]"),
    "frames": _Key(_whole(1), 16, "frames sampled per clip"),
    "fps": _Key(_POSITIVE, 8.0, "frame rate written into the request"),
    "jpeg_quality": _Key(_whole(1, 100), 90, "1-100, for format 'frames'"),
    "video_field": _Key(Maybe(Text()), None, "multipart form field for format 'video' (raw body when absent)"),
    "token_env": _Key(Maybe(Text()), None, "environment variable that holds the credential"),
    "header": _Key(Maybe(Text()), None, f"credential header template, with {{token}} (default {DEFAULT_HEADER!r})"),
    "timeout": _Key(_POSITIVE, 30.0, "seconds to connect and to wait for each read"),
    "retries": _Key(_whole(0), 3, "retries after the first attempt"),
    "backoff": _Key(_NON_NEGATIVE, 0.5, "first retry delay in seconds, doubled each retry"),
    "max_backoff": _Key(_NON_NEGATIVE, 30.0, "longest backoff delay in seconds"),
    "max_retry_after": _Key(_NON_NEGATIVE, 60.0, "longest Retry-After honoured, in seconds"),
    "concurrency": _Key(_whole(1), 4, "requests in flight at once"),
    "ca_bundle": _Key(Maybe(Text()), None, "PEM file of the CA(s) to trust instead of the system's"),
    "verify": _Key(Flag(), True, "check TLS certificates (true unless you must)"),
}


@dataclass(frozen=True)
class Endpoint:
    """A validated endpoint description (keys as in ``_KEYS``). Holds the name of the
    credential's variable, never its value."""

    url: str
    format: str
    traits: tuple[tuple[str, tuple[str, ...]], ...]
    input: InputSpec
    fps: float
    jpeg_quality: int
    video_field: str | None
    token_env: str | None
    header: str
    timeout: float
    retries: int
    backoff: float
    max_backoff: float
    max_retry_after: float
    concurrency: int
    ca_bundle: str | None
    verify: bool
    source: str = ""

    def identity(self) -> str:
        """What decides the scores: where they come from and what is sent. Transport knobs
        (timeouts, retries, concurrency, TLS trust) and the credential are left out, so tuning
        them keeps a resumable store usable."""
        what = {"url": self.url, "format": self.format, "traits": [[t, list(p)] for t, p in self.traits],
                "input": self.input.to_dict(), "fps": self.fps, "jpeg_quality": self.jpeg_quality,
                "video_field": self.video_field}
        return "sha256:" + hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def load_description(path: str | os.PathLike) -> Endpoint:
    """Read and validate an endpoint description (TOML)."""
    path = Path(path)
    if not path.is_file():
        raise RaterError(f"{path}: HTTP rater description file does not exist")
    try:
        data = read_toml(path)
    except ConfigError as exc:  # a description is part of the rater spec: the rater's error
        raise RaterError(str(exc)) from None
    return parse_description(data, where=str(path), base=path.parent)


def parse_description(data: Mapping[str, Any], *, where: str, base: Path | None = None) -> Endpoint:
    """Every check of a description, in one place; each message names ``where`` and the key."""
    try:
        return _parse(data, where, base)
    except ConfigError as exc:  # the shared rules speak ConfigError; a description is the rater's
        raise RaterError(str(exc)) from None


def _parse(data: Mapping[str, Any], where: str, base: Path | None) -> Endpoint:
    def bad(key: str, why: str) -> RaterError:
        return RaterError(f"{where}: key '{key}' {why}")

    def label(key: str) -> str:  # "traits.openness" -> key 'traits' entry 'openness'
        name, _, entry = key.partition(".")
        return f"{where}: key '{name}'" + (f" entry {entry!r}" if entry else "")

    unknown = sorted(set(data) - set(_KEYS), key=str)
    if unknown:
        raise RaterError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(_KEYS)}")
    v = {name: check(name, data.get(name, key.default), key.rule, where=where, label=label)
         for name, key in _KEYS.items()}

    if v["url"] is None:
        raise bad("url", "is required (the endpoint, e.g. https://api.vendor.example/v1/score)")
    _check_url(v["url"], where)

    traits = v["traits"] if v["traits"] is not None else {t: (t,) for t in OCEAN}
    for trait, path in traits.items():
        if not trait.strip():
            raise bad("traits", "has an empty trait name")
        if not all(path):
            raise bad("traits", f"entry {trait!r} has an empty step in its path {data['traits'][trait]!r}")

    try:
        spec = InputSpec(size=v["size"], frames=v["frames"])
    except RaterError as exc:
        raise bad("size", f"does not fit ({exc})") from None
    if v["format"] == "video" and any(s % 2 for s in spec.size):
        raise bad("size", f"must be even for format 'video' (MP4 frames have even sides), got {list(spec.size)}")
    if v["video_field"] is not None and v["format"] != "video":
        raise bad("video_field", "only applies to format 'video'")
    if v["video_field"] is not None and not _HEADER_NAME.match(v["video_field"]):
        raise bad("video_field", f"must be a plain form field name, got {v['video_field']!r}")
    if "jpeg_quality" in data and v["format"] != "frames":
        raise bad("jpeg_quality", "only applies to format 'frames'")

    token_env = v["token_env"]
    if token_env is not None and not _ENV_NAME.match(token_env):
        # Not echoed: what is there by mistake may be the credential itself.
        raise bad("token_env", "must be the NAME of an environment variable (letters, digits, _), "
                               "not the credential itself")
    if v["header"] is not None and token_env is None:
        raise bad("header", "needs token_env (the variable whose value replaces {token})")
    header = v["header"] or DEFAULT_HEADER
    name, sep, value = header.partition(":")
    if not sep or not _HEADER_NAME.match(name.strip()) or value.count("{token}") != 1:
        raise bad("header", "must look like 'Name: text {token} text' with {token} once "
                            f"(the credential itself comes from token_env), got {header!r}")

    ca_bundle = v["ca_bundle"]
    if ca_bundle is not None:
        bundle = Path(ca_bundle).expanduser()
        if not bundle.is_absolute() and base is not None:
            bundle = base / bundle  # relative to the description, not to the shell
        if not bundle.is_file():
            raise bad("ca_bundle", f"names {bundle}, which does not exist")
        ca_bundle = str(bundle)
    if not v["verify"] and ca_bundle is not None:
        raise bad("verify", "is false, so ca_bundle would never be used; keep one of them")
    if v["backoff"] > v["max_backoff"]:
        raise bad("backoff", f"({v['backoff']:g} s) is larger than max_backoff ({v['max_backoff']:g} s)")

    return Endpoint(
        url=v["url"], format=v["format"], traits=tuple(traits.items()), input=spec, fps=v["fps"],
        jpeg_quality=v["jpeg_quality"], video_field=v["video_field"], token_env=token_env, header=header,
        timeout=v["timeout"], retries=v["retries"], backoff=v["backoff"], max_backoff=v["max_backoff"],
        max_retry_after=v["max_retry_after"], concurrency=v["concurrency"], ca_bundle=ca_bundle,
        verify=v["verify"], source=where)


def _check_url(url: str, where: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise RaterError(f"{where}: key 'url' is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RaterError(f"{where}: key 'url' must be http(s)://host/path, got {url!r}")
    if parts.username is not None or parts.password is not None:
        # A URL ends up in audit.json and in logs; a credential in it would go with it.
        raise RaterError(f"{where}: key 'url' must not hold credentials (user:password@); "
                         "put the token in an environment variable named by token_env")
    if parts.fragment:
        raise RaterError(f"{where}: key 'url' must not have a #fragment")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date); ``None``
    when absent or unreadable (the caller falls back to its own backoff)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)  # the RFC says an integer; a decimal is harmless to accept
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" dates come back naive; HTTP dates are always GMT
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class _Secret:
    """A credential that never prints itself, whatever ends up formatting the object holding it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class _RowFailed(Exception):
    """One clip could not be scored; ``reason`` goes into ``skipped``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retry(Exception):
    """A failure that trying again may cure; ``wait`` is the server's own Retry-After, if any."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


_warned_plain_hosts: set[str] = set()
_warned_lock = threading.Lock()


def _is_loopback(host: str) -> bool:
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpRater:
    """A rater behind an HTTP endpoint (see the module docstring). Build one with
    :func:`load_http_rater` or ``HttpRater(load_description(path))``."""

    def __init__(self, endpoint: Endpoint, *, name: str | None = None) -> None:
        self.endpoint = endpoint
        self.trait_names = tuple(t for t, _ in endpoint.traits)
        self.input = endpoint.input
        self.name = name or endpoint.url
        self.identity = endpoint.identity()
        parts = urlsplit(endpoint.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        where = endpoint.source or endpoint.url
        self._auth: tuple[str, str, _Secret] | None = None  # header name, value template, token
        if endpoint.token_env:
            self._auth = _credential(endpoint, where)
        self._context = self._tls_context(where) if self._https else None
        if not self._https and not _is_loopback(self._host):
            with _warned_lock:
                first = self._host not in _warned_plain_hosts
                _warned_plain_hosts.add(self._host)
            if first:
                warnings.warn(f"{where}: {endpoint.url} is plain http: clips"
                              f"{' and the credential' if self._auth else ''} cross the network unencrypted",
                              InsecureEndpointWarning, stacklevel=3)
        self._idle: LifoQueue[http.client.HTTPConnection] = LifoQueue()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "rows_failed": 0}

    def _tls_context(self, where: str) -> ssl.SSLContext:
        ep = self.endpoint
        try:
            context = ssl.create_default_context(cafile=ep.ca_bundle)
        except (ssl.SSLError, OSError) as exc:
            raise RaterError(f"{where}: key 'ca_bundle': {ep.ca_bundle} is not a readable PEM "
                             f"certificate file ({exc})") from None
        if not ep.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            warnings.warn(f"{where}: verify = false: the TLS certificate of {self._host} is not checked, so "
                          "anyone on the network path can read the clips and the credential",
                          InsecureEndpointWarning, stacklevel=4)
        return context

    def __repr__(self) -> str:
        ep = self.endpoint
        return (f"HttpRater(url={ep.url!r}, format={ep.format!r}, traits={list(self.trait_names)!r}, "
                f"credential={'$' + ep.token_env if ep.token_env else None!r})")

    __str__ = __repr__

    def __reduce__(self):
        # Shipped to another process (a Ray actor), the rater is rebuilt from its description
        # there: threads, sockets and TLS state do not travel, and neither does the credential,
        # which the other process reads from its own environment.
        return (type(self), (self.endpoint,), {"name": self.name})

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.name = state["name"]

    # ----------------------------------------------------------------------------- calling

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[2] != 3:
            raise RaterError(f"{self.name}: expects a float tensor [B, T, 3, H, W], got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        rows = x.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
        rows = rows.permute(0, 1, 3, 4, 2).contiguous().numpy()  # [B, T, H, W, 3] RGB
        futures = [self._executor().submit(self._score_row, row) for row in rows]
        # NaN, not zero, in rows that failed: anything that ignores `failures` trips check_scores.
        scores = torch.full((len(rows), len(self.trait_names)), float("nan"))
        failures: dict[int, str] = {}
        fatal: RaterError | None = None
        for i, future in enumerate(futures):
            try:
                scores[i] = torch.tensor(future.result(), dtype=torch.float32)
            except _RowFailed as exc:
                failures[i] = exc.reason
            except RaterError as exc:
                fatal = fatal or exc
        if fatal is not None:
            raise fatal
        if failures:
            with self._stats_lock:
                self.stats["rows_failed"] += len(failures)
            raise PartialScores(scores, failures)
        return scores

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.endpoint.concurrency, thread_name_prefix="auditkit-http")
            return self._pool

    def close(self) -> None:
        """Stop the worker threads and close idle connections (a later call reopens them)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        while True:
            try:
                self._idle.get_nowait().close()
            except Empty:
                break

    def __enter__(self) -> "HttpRater":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _score_row(self, frames: np.ndarray) -> list[float]:
        ep = self.endpoint
        body, content_type = self._encode(frames)
        # Jitter drawn from the request itself: a re-run waits the same way, clips differ.
        rng = random.Random(hashlib.sha256(body).digest()[:8])
        attempts = ep.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(body, content_type)
            except _RowFailed as exc:
                raise _RowFailed(self._redact(f"http: {exc.reason}")) from None
            except _Retry as exc:
                if attempt == attempts:
                    plural = "s" if attempts > 1 else ""
                    raise _RowFailed(self._redact(f"http: {exc.reason} after {attempts} attempt{plural}")) from None
                if exc.wait is not None:
                    delay = min(exc.wait, ep.max_retry_after)
                else:
                    step = min(ep.max_backoff, ep.backoff * 2 ** (attempt - 1))
                    delay = step / 2 + rng.uniform(0, step / 2)
                with self._stats_lock:
                    self.stats["retries"] += 1
                log.debug("POST %s: %s; retry %d of %d in %.2f s", ep.url, self._redact(exc.reason),
                          attempt, attempts - 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(self, body: bytes, content_type: str) -> list[float]:
        ep = self.endpoint
        try:
            status, phrase, headers, data = self._post(body, content_type)
        except ssl.SSLCertVerificationError as exc:
            raise RaterError(f"{self.name}: the TLS certificate of {self._host} does not verify "
                             f"({exc.verify_message or exc.reason}); for a private CA set ca_bundle in the "
                             "description") from None
        except (TimeoutError, socket.timeout):
            raise _Retry(f"no answer within the timeout ({ep.timeout:g} s)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retry(f"connection failed ({type(exc).__name__}"
                         f"{': ' + str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
        label = f"{status} {phrase or _phrase(status)}".strip()
        if 200 <= status < 300:
            return self._read_scores(data)
        detail = _detail(data)
        if 300 <= status < 400:
            raise RaterError(f"{self.name}: {ep.url} answered {label}, a redirect to "
                             f"{headers.get('Location', '(no Location)')}; redirects are not followed (they "
                             "would carry the credential elsewhere): put the final URL in the description")
        if status in FATAL_STATUS:
            hint = f" (${ep.token_env})" if status in (401, 403) and ep.token_env else ""
            raise RaterError(self._redact(f"{self.name}: {ep.url} answered {label}: "
                                          f"{FATAL_STATUS[status]}{hint}{detail}"))
        if status in (408, 429) or (status >= 500 and status not in (501, 505)):
            wait = parse_retry_after(headers.get("Retry-After")) if status in (429, 503) else None
            raise _Retry(f"{label}{detail}", wait)
        raise _RowFailed(f"{label}{detail}")

    def _post(self, body: bytes, content_type: str) -> tuple[int, str, http.client.HTTPMessage, bytes]:
        try:
            conn = self._idle.get_nowait()
        except Empty:
            conn = self._connect()
        headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": "auditkit-http"}
        if self._auth is not None:
            name, template, token = self._auth
            headers[name] = template.replace("{token}", token.reveal())
        with self._stats_lock:
            self.stats["requests"] += 1
        try:
            conn.request("POST", self._target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._idle.put(conn)  # keep-alive: the next clip skips the TCP and TLS handshakes
        return response.status, response.reason, response.headers, data

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.endpoint.timeout,
                                               context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.endpoint.timeout)

    def _redact(self, text: str) -> str:
        if self._auth is not None:
            text = text.replace(self._auth[2].reveal(), "<redacted>")
        return text

    # ----------------------------------------------------------------------------- payloads

    def _encode(self, frames: np.ndarray) -> tuple[bytes, str]:
        """uint8 RGB ``[T, H, W, 3]`` -> (request body, content type)."""
        import cv2

        ep = self.endpoint
        bgr = frames[..., ::-1]
        if ep.format == "frames":
            jpegs = []
            for frame in bgr:
                ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame), [cv2.IMWRITE_JPEG_QUALITY, ep.jpeg_quality])
                if not ok:
                    raise RaterError(f"{self.name}: OpenCV could not encode a frame as JPEG")
                jpegs.append(base64.b64encode(buf.tobytes()).decode("ascii"))
            return json.dumps({"frames": jpegs, "fps": ep.fps}).encode(), "application/json"
        video = _mp4(frames, ep.fps, self.name)
        if ep.video_field is None:
            return video, "video/mp4"
        boundary = "auditkit-" + hashlib.sha256(video).hexdigest()[:32]
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{ep.video_field}\"; "
                f"filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode() + video
        body += f"\r\n--{boundary}--\r\n".encode()
        return body, f"multipart/form-data; boundary={boundary}"

    def _read_scores(self, data: bytes) -> list[float]:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            start = data[:60].decode("utf-8", "replace")
            raise _RowFailed(f"response is not JSON (starts {start!r})") from None
        out = []
        for trait, path in self.endpoint.traits:
            node = doc
            for depth, step in enumerate(path):
                if isinstance(node, dict) and step in node:
                    node = node[step]
                elif isinstance(node, list) and re.fullmatch(r"-?\d+", step) and -len(node) <= int(step) < len(node):
                    node = node[int(step)]
                else:
                    here = ".".join(path[:depth]) or "the top level"
                    has = (f"keys there: {', '.join(map(str, list(node)[:12]))}" if isinstance(node, dict)
                           else f"it is {type(node).__name__}")
                    raise _RowFailed(f"response has no '{'.'.join(path)}' for trait {trait} "
                                     f"('{step}' missing at {here}; {has})")
            if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
                raise _RowFailed(f"response '{'.'.join(path)}' for trait {trait} is {_short(node)}, "
                                 "not a finite number")
            out.append(float(node))
        return out


def _credential(endpoint: Endpoint, where: str) -> tuple[str, str, _Secret]:
    var = endpoint.token_env
    token = os.environ.get(var or "", "").strip()
    if not token:
        raise RaterError(f"{where}: environment variable {var} (token_env) is not set or empty; "
                         "export the vendor's credential in it")
    # http.client would reject such a value with a message that quotes it in full.
    if any(ord(c) < 0x20 or ord(c) == 0x7F or ord(c) > 0xFF for c in token):
        raise RaterError(f"{where}: environment variable {var} holds characters that cannot go in an "
                         "HTTP header (a line break or other control character)")
    name, _, template = endpoint.header.partition(":")
    return name.strip(), template.strip(), _Secret(token)


def _mp4(frames: np.ndarray, fps: float, name: str) -> bytes:
    """RGB ``[T, H, W, 3]`` as the bytes of an mp4v file (the sample clips' own writer)."""
    from auditkit.media.video import write_video

    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix="auditkit-http-")
    os.close(fd)
    try:
        try:
            write_video(Path(tmp), frames, fps)
        except RuntimeError:
            raise RaterError(f"{name}: this OpenCV build cannot write MP4 (mp4v); use format 'frames'") from None
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _detail(data: bytes) -> str:
    """The start of an error body, which is where vendors say what was wrong."""
    text = " ".join(data[:400].decode("utf-8", "replace").split())
    return f" ({text[:160]}{'...' if len(text) > 160 else ''})" if text else ""


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_http_rater(spec: str) -> HttpRater:
    """``http:PATH.toml`` (a description file) or a bare ``https://host/path`` URL (defaults:
    JPEG frames in JSON, OCEAN names as top-level keys of the response, 224 px, 16 frames)."""
    if spec.startswith(("http://", "https://")):
        return HttpRater(parse_description({"url": spec}, where=f"rater {spec!r}"), name=spec)
    if spec.startswith("http:") and len(spec) > len("http:"):
        return HttpRater(load_description(spec[len("http:"):]), name=spec)
    raise RaterError(f"rater {spec!r}: give http:PATH.toml (an endpoint description) or a full "
                     "https://host/path URL")
