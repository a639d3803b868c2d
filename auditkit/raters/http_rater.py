"""HTTP rater: a vendor's black-box scoring endpoint, audited over the network.

Each clip of a batch becomes one ``POST``; up to ``concurrency`` of them are in flight at once.
The request is either the clip's sampled frames as JPEGs in JSON (``format = "frames"``), or the
recording a candidate would upload (``format = "video"``: the edited clip at its own frame rate,
or the lower ``fps`` stated; for its whole length, or a ``seconds`` window; at its own size, or
capped by ``max_side``; H.264 with the clip's sound as AAC in MP4 — see
:mod:`auditkit.core.recording`), as the raw body or a multipart upload when ``video_field`` is set.
The response is JSON; ``traits`` maps each trait to a path in it (``"scores.O"``).

The transport is urllib3: a kept-alive connection pool and its ``Retry``. Connection errors,
timeouts, ``408``, ``429`` and ``5xx`` (but ``501``, ``505``) are retried with urllib3's jittered
exponential backoff, honouring ``Retry-After`` on ``429`` and ``503`` up to ``max_retry_after``;
any other answer fails that clip at once. A clip whose request finally fails is reported through
:class:`auditkit.errors.PartialScores`, so the audit lists the pair in ``skipped`` with the reason;
it is never scored as zero. Answers that say the whole endpoint is misconfigured (a redirect,
``401``/``403``/``404``/``405``/``407``, a TLS certificate that does not verify) stop the audit
with a :class:`RaterError` instead of skipping every pair.

The credential comes from an environment variable named in the description (``token_env``),
never from the command line; it is kept out of every message, repr, identity and log line.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import math
import os
import re
import ssl
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple
from urllib.parse import urlsplit

import numpy as np
import torch
from urllib3 import HTTPConnectionPool, Retry, Timeout, connection_from_url, encode_multipart_formdata
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, NewConnectionError, ReadTimeoutError

from auditkit.contract.errors import ConfigError, PartialScores, RaterError, first_line
from auditkit.contract.params import Flag, Maybe, Number, OneOf, Rule, Table, Text, check
from auditkit.contract.rater import OCEAN, InputSpec
from auditkit.contract.toml import read_toml
from auditkit.media.recording import RecordingSpec

FORMATS = ("frames", "video")
DEFAULT_HEADER = "Authorization: Bearer {token}"
# Answers that would come back the same for every clip: retrying or skipping pair by pair would
# only hide a wrong URL or credential behind thousands of identical skipped lines.
FATAL_STATUS = {401: "the credential was refused", 403: "the credential is not allowed to use this endpoint",
                404: "the URL does not exist", 405: "the endpoint does not accept POST",
                407: "a proxy wants credentials"}
# 501 and 505 say the server will never do this, however often it is asked.
RETRY_STATUS = frozenset({408, 429, *range(500, 600)} - {501, 505})

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
    "size": _Key(_Size(), 224, "format 'frames': frame size sent, N or [height, width]"),
    "frames": _Key(_whole(1), 16, "format 'frames': frames sampled per clip"),
    "fps": _Key(Maybe(_POSITIVE), None, "format 'frames': the frame rate reported with them (default 8); "
                                        "format 'video': the highest frame rate sent (default: the clip's own)"),
    "seconds": _Key(Maybe(_POSITIVE), None, "format 'video': seconds of each clip sent, centred (default: all)"),
    "max_side": _Key(Maybe(_whole(16)), None, "format 'video': the longest side sent (default: the clip's own)"),
    "jpeg_quality": _Key(_whole(1, 100), 90, "1-100, for format 'frames'"),
    "video_field": _Key(Maybe(Text()), None, "multipart form field for format 'video' (raw body when absent)"),
    "token_env": _Key(Maybe(Text()), None, "environment variable that holds the credential"),
    "header": _Key(Maybe(Text()), None, f"credential header template, with {{token}} (default {DEFAULT_HEADER!r})"),
    "timeout": _Key(_POSITIVE, 30.0, "seconds to connect and to wait for each read"),
    "retries": _Key(_whole(0), 3, "retries after the first attempt"),
    "backoff": _Key(_NON_NEGATIVE, 0.5, "urllib3's backoff factor: retry n > 1 waits backoff * 2**(n-1) s plus "
                                        "up to backoff s of jitter; the first retry goes at once"),
    "max_backoff": _Key(_NON_NEGATIVE, 30.0, "longest backoff delay in seconds"),
    "max_retry_after": _Key(_NON_NEGATIVE, 60.0, "longest Retry-After honoured, in seconds (a longer one waits this)"),
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
    fps: float | None
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
    seconds: float | None = None
    max_side: int | None = None

    def identity(self) -> str:
        """What decides the scores: where they come from and what is sent. Transport knobs
        (timeouts, retries, concurrency, TLS trust) and the credential are left out, so tuning
        them keeps a resumable store usable."""
        what = {"url": self.url, "format": self.format, "traits": [[t, list(p)] for t, p in self.traits],
                "input": self.input.to_dict(), "fps": self.fps, "jpeg_quality": self.jpeg_quality,
                "video_field": self.video_field}
        if self.format == "video":  # what a recording holds; absent from a frames endpoint's identity
            what.update(seconds=self.seconds, max_side=self.max_side, recording=2)
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
    if v["format"] == "video":
        for key, instead in (("size", "it is sent at its own size; cap it with max_side"),
                             ("frames", "every frame is sent; lower the rate with fps")):
            if key in data:
                raise bad(key, f"only applies to format 'frames' (format 'video' sends the recording: {instead})")
    else:
        for key in ("seconds", "max_side"):
            if v[key] is not None:
                raise bad(key, "only applies to format 'video'")
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
        url=v["url"], format=v["format"], traits=tuple(traits.items()), input=spec,
        fps=v["fps"] if v["fps"] is not None or v["format"] == "video" else 8.0,
        seconds=v["seconds"], max_side=v["max_side"],
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


# ------------------------------------------------------------------------------ retrying


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date); ``None``
    when absent or unreadable (the caller falls back to its own backoff).

    Ours rather than urllib3's ``Retry.parse_retry_after``, which raises ``InvalidHeader`` out of
    the request for a value it cannot read (``-5``, ``1.5``): a vendor's odd header should cost
    a backoff, not the clip."""
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


class _Retries(Retry):
    """urllib3's retry rules, with ours on top: a certificate that does not verify is raised at
    once (it fails the same way every time); ``Retry-After`` is read with
    :func:`parse_retry_after`, only on 429 and 503 and capped at ``max_retry_after`` (a longer one
    still retries, after the cap); each retry is counted in ``tally``, which urllib3 passes on
    to every copy it makes, so the caller knows how many attempts a request took."""

    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})

    def __init__(self, *args: Any, max_retry_after: float = 60.0, tally: list[int] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self.tally = [0] if tally is None else tally

    def new(self, **kw: Any) -> "_Retries":
        return super().new(max_retry_after=self.max_retry_after, tally=self.tally, **kw)

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> "_Retries":
        if error is not None and _find(error, ssl.SSLCertVerificationError) is not None:
            raise error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        self.tally[0] += 1  # not exhausted: another attempt follows
        return retry

    def get_retry_after(self, response: Any) -> float | None:
        if response.status not in self.RETRY_AFTER_STATUS_CODES:
            return None
        seconds = parse_retry_after(response.headers.get("Retry-After"))
        return None if seconds is None else min(seconds, self.max_retry_after)


# ------------------------------------------------------------------------------ the rater


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
        # A vendor that takes recordings: the audit renders and sends each one (score_recordings).
        self.recording = (RecordingSpec(endpoint.fps, endpoint.seconds, endpoint.max_side)
                          if endpoint.format == "video" else None)
        parts = urlsplit(endpoint.url)
        self._host = parts.hostname or ""
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        where = endpoint.source or endpoint.url
        self._auth: tuple[str, str, _Secret] | None = None  # header name, value template, token
        if endpoint.token_env:
            self._auth = _credential(endpoint, where)
        https = parts.scheme == "https"
        self._context = self._tls_context(where) if https else None
        if not https and not _is_loopback(self._host):
            with _warned_lock:
                first = self._host not in _warned_plain_hosts
                _warned_plain_hosts.add(self._host)
            if first:
                warnings.warn(f"{where}: {endpoint.url} is plain http: clips"
                              f"{' and the credential' if self._auth else ''} cross the network unencrypted",
                              InsecureEndpointWarning, stacklevel=3)
        self._threads: ThreadPoolExecutor | None = None
        self._connections: HTTPConnectionPool | None = None
        self._lock = threading.Lock()
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
        if self.recording is not None:
            raise RaterError(f"{self.name}: format 'video' sends recordings, not sampled frames: "
                             "audit it with run_audit, or call score_recordings with MP4 files")
        if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[2] != 3:
            raise RaterError(f"{self.name}: expects a float tensor [B, T, 3, H, W], got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        rows = x.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
        rows = rows.permute(0, 1, 3, 4, 2).contiguous().numpy()  # [B, T, H, W, 3] RGB
        return self._score_all([self._encode(row) for row in rows])

    def score_recordings(self, recordings: list[bytes]) -> torch.Tensor:
        """``[B, K]`` scores of MP4 recordings (bytes), one request each; rows that failed for
        good are reported through :class:`PartialScores`, as with frames."""
        if self.recording is None:
            raise RaterError(f"{self.name}: format 'frames' takes sampled frames, not recordings")
        return self._score_all([self._wrap_video(body) for body in recordings])

    def _score_all(self, bodies: list[tuple[bytes, str]]) -> torch.Tensor:
        threads, connections = self._workers()
        futures = [threads.submit(self._score_body, body, connections) for body in bodies]
        # NaN, not zero, in rows that failed: anything that ignores `failures` trips check_scores.
        scores = torch.full((len(bodies), len(self.trait_names)), float("nan"))
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

    def _workers(self) -> tuple[ThreadPoolExecutor, HTTPConnectionPool]:
        with self._lock:
            if self._threads is None or self._connections is None:
                ep = self.endpoint
                tls = {} if self._context is None else {"ssl_context": self._context}
                # One kept-alive connection per worker thread and never more (block): the
                # concurrency cap is also what the vendor's rate limit sees.
                self._connections = connection_from_url(
                    ep.url, maxsize=ep.concurrency, block=True,
                    timeout=Timeout(connect=ep.timeout, read=ep.timeout), **tls)
                self._threads = ThreadPoolExecutor(ep.concurrency, thread_name_prefix="auditkit-http")
            return self._threads, self._connections

    def close(self) -> None:
        """Stop the worker threads and close idle connections (a later call reopens them)."""
        with self._lock:
            threads, connections = self._threads, self._connections
            self._threads = self._connections = None
        if threads is not None:
            threads.shutdown(wait=True)
        if connections is not None:
            connections.close()

    def __enter__(self) -> "HttpRater":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _score_body(self, request: tuple[bytes, str], connections: HTTPConnectionPool) -> list[float]:
        body, content_type = request
        ep = self.endpoint
        retries = _Retries(
            total=ep.retries, allowed_methods=frozenset({"POST"}), status_forcelist=RETRY_STATUS,
            backoff_factor=ep.backoff, backoff_max=ep.max_backoff, backoff_jitter=ep.backoff,
            respect_retry_after_header=True, max_retry_after=ep.max_retry_after, raise_on_status=False)
        try:
            return self._post(connections, body, content_type, retries)
        except _RowFailed as exc:
            raise _RowFailed(self._redact(f"http: {exc.reason}")) from None
        finally:
            with self._stats_lock:
                self.stats["requests"] += 1 + retries.tally[0]
                self.stats["retries"] += retries.tally[0]

    def _post(self, connections: HTTPConnectionPool, body: bytes, content_type: str, retries: _Retries) -> list[float]:
        ep = self.endpoint
        headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": "auditkit-http"}
        if self._auth is not None:
            name, template, token = self._auth
            headers[name] = template.replace("{token}", token.reveal())
        try:
            # redirect=False: a redirect would carry the credential elsewhere; it is refused below.
            response = connections.urlopen("POST", self._target, body=body, headers=headers, retries=retries,
                                           redirect=False)
        except HTTPError as exc:
            cert = _find(exc, ssl.SSLCertVerificationError)
            if cert is not None:
                raise RaterError(f"{self.name}: the TLS certificate of {self._host} does not verify "
                                 f"({cert.verify_message or cert.reason}); for a private CA set ca_bundle in the "
                                 "description") from None
            if isinstance(exc, MaxRetryError):
                raise _RowFailed(f"{_why(exc.reason or exc, ep.timeout)}{_after(retries)}") from None
            raise _RowFailed(f"the answer could not be read ({_name(exc)})") from None

        status = response.status
        label = f"{status} {response.reason or _phrase(status)}".strip()
        if 200 <= status < 300:
            return self._read_scores(response.data)
        detail = _detail(response.data)
        if 300 <= status < 400:
            raise RaterError(self._redact(
                f"{self.name}: {ep.url} answered {label}, a redirect to "
                f"{response.headers.get('Location', '(no Location)')}; redirects are not followed (they "
                "would carry the credential elsewhere): put the final URL in the description"))
        if status in FATAL_STATUS:
            hint = f" (${ep.token_env})" if status in (401, 403) and ep.token_env else ""
            raise RaterError(self._redact(f"{self.name}: {ep.url} answered {label}: "
                                          f"{FATAL_STATUS[status]}{hint}{detail}"))
        if status in RETRY_STATUS:  # urllib3 hands back the last answer once the retries are spent
            raise _RowFailed(f"{label}{detail}{_after(retries)}")
        raise _RowFailed(f"{label}{detail}")

    def _redact(self, text: str) -> str:
        if self._auth is not None:
            text = text.replace(self._auth[2].reveal(), "<redacted>")
        return text

    # ----------------------------------------------------------------------------- payloads

    def _encode(self, frames: np.ndarray) -> tuple[bytes, str]:
        """uint8 RGB ``[T, H, W, 3]`` -> (JSON request body of JPEGs, content type)."""
        import cv2

        ep = self.endpoint
        jpegs = []
        for frame in frames[..., ::-1]:
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame), [cv2.IMWRITE_JPEG_QUALITY, ep.jpeg_quality])
            if not ok:
                raise RaterError(f"{self.name}: OpenCV could not encode a frame as JPEG")
            jpegs.append(base64.b64encode(buf.tobytes()).decode("ascii"))
        return json.dumps({"frames": jpegs, "fps": ep.fps}).encode(), "application/json"

    def _wrap_video(self, video: bytes) -> tuple[bytes, str]:
        """An MP4 recording -> (request body, content type): raw, or a multipart upload."""
        ep = self.endpoint
        if ep.video_field is None:
            return video, "video/mp4"
        # A boundary drawn from the clip, not at random: the same clip is the same request every run.
        return encode_multipart_formdata({ep.video_field: ("clip.mp4", video, "video/mp4")},
                                         boundary="auditkit-" + hashlib.sha256(video).hexdigest()[:32])

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


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps, outermost first: urllib3 keeps the original error in
    ``__cause__`` (``NewConnectionError``, ``MaxRetryError``) or in its args (``ProtocolError``,
    ``SSLError``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or next((a for a in current.args if isinstance(a, BaseException)), None)


def _find(error: BaseException, kind: type[BaseException]) -> Any:
    return next((e for e in _causes(error) if isinstance(e, kind)), None)


def _name(error: BaseException) -> str:
    """The innermost error as ``Type: first line``; the outer ones are urllib3's wrappers."""
    *_, root = _causes(error)
    text = first_line(root, 120) if str(root).strip() else ""
    return f"{type(root).__name__}{': ' + text if text else ''}"


def _why(error: BaseException, timeout: float) -> str:
    # NewConnectionError is a ConnectTimeoutError in urllib3, but a refused connection is no timeout.
    if isinstance(error, (ReadTimeoutError, ConnectTimeoutError)) and not isinstance(error, NewConnectionError):
        return f"no answer within the timeout ({timeout:g} s)"
    return f"connection failed ({_name(error)})"


def _after(retries: _Retries) -> str:
    attempts = 1 + retries.tally[0]
    return f" after {attempts} attempt{'s' if attempts > 1 else ''}"


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
