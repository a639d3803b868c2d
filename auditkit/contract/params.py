"""Declarative rules for settings and arguments, so a bad value reads the same wherever it came
from — a TOML file, the command line, the pytest plugin, a suite file or the Python API.

A rule normalises a good value (``"a, b"`` → ``("a", "b")``) and raises :class:`Invalid` with
what it wanted for a bad one; :func:`check` turns that into one :class:`ConfigError` line that
names the place and the key: ``auditkit.toml: alpha must be a number between 0 and 0.5, got 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .errors import ConfigError


class Invalid(ValueError):
    """A value a rule refuses; ``key`` names a part of it (``openness`` of a table) when one is at fault."""

    def __init__(self, wanted: str, value: Any, key: str | None = None) -> None:
        super().__init__(wanted)
        self.wanted, self.value, self.key = wanted, value, key


class Rule:
    what = "a value"

    def __call__(self, value: Any) -> Any:
        raise NotImplementedError

    def refuse(self, value: Any, key: str | None = None, wanted: str | None = None) -> Invalid:
        return Invalid(wanted or self.what, value, key)


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number(Rule):
    """A real number (or an integer) within bounds; infinities and NaN are never accepted."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    text: str = ""

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.text:
            return self.text
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            lb, hb = ("(" if self.low_open else "["), (")" if self.high_open else "]")
            return f"{kind} in {lb}{self.low:g}, {self.high:g}{hb}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        return f"a finite {kind[2:]}" if not self.integer else kind

    def __call__(self, value: Any) -> Any:
        if self.integer:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = _real(value) and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if not ok:
            raise self.refuse(value)
        return value if self.integer else float(value)


@dataclass(frozen=True)
class OneOf(Rule):
    values: tuple[str, ...]
    text: str = ""  # what to say instead of "one of a, b" (a file format's own spelling of them)

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.text or "one of " + ", ".join(self.values)

    def __call__(self, value: Any) -> Any:
        if value not in self.values:
            raise self.refuse(value)
        return value


@dataclass(frozen=True)
class Text(Rule):
    what = "a non-empty string"

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise self.refuse(value)
        return value


@dataclass(frozen=True)
class Flag(Rule):
    what = "true or false"

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise self.refuse(value)
        return value


@dataclass(frozen=True)
class Names(Rule):
    """A non-empty list of names, or one string of comma-separated names; ``allowed`` limits them."""

    allowed: tuple[str, ...] = ()
    empty_ok: bool = False

    @property
    def what(self) -> str:  # type: ignore[override]
        base = "a list of names" if self.empty_ok else "a non-empty list of names"
        return base + (f" from {', '.join(self.allowed)}" if self.allowed else "")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value) \
                or (not value and not self.empty_ok):
            raise self.refuse(value)
        if self.allowed and any(v not in self.allowed for v in value):
            raise self.refuse(value)
        return tuple(value)


@dataclass(frozen=True)
class Pairs(Rule):
    what = "a list of [edit, edit] pairs"
    example: str = ""

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(c, (list, tuple)) and len(c) == 2 and all(isinstance(x, str) and x for x in c)
                for c in value):
            raise self.refuse(value, wanted=self.what + (f", e.g. {self.example}" if self.example else ""))
        return tuple(tuple(c) for c in value)


@dataclass(frozen=True)
class Table(Rule):
    """A table of name = value, each value checked by ``values``."""

    values: Rule
    what_text: str = "a table of name = number"
    empty_ok: bool = True

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.what_text

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, Mapping) or (not value and not self.empty_ok):
            raise self.refuse(value)
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise self.refuse(value)
            try:
                out[key] = self.values(item)
            except Invalid as exc:
                raise Invalid(exc.wanted, item, key) from None
        return out


@dataclass(frozen=True)
class Either(Rule):
    """The first of two rules that accepts the value (a number, or a table of numbers)."""

    first: Rule
    second: Rule
    what_text: str = ""

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.what_text or f"{self.first.what} or {self.second.what}"

    def __call__(self, value: Any) -> Any:
        rule = self.second if isinstance(value, Mapping) else self.first
        try:
            return rule(value)
        except Invalid as exc:
            if exc.key is not None:
                raise
            raise self.refuse(value) from None


@dataclass(frozen=True)
class Maybe(Rule):
    """``None`` (meaning "not set"), or what ``rule`` accepts."""

    rule: Rule

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.rule.what

    def __call__(self, value: Any) -> Any:
        return None if value is None else self.rule(value)


def check(name: str, value: Any, rule: Rule, *, where: str,
          label: Callable[[str], str] | None = None) -> Any:
    """``rule(value)``, or one :class:`ConfigError` line naming ``where`` and the key.

    ``label`` turns a key into what the user typed (``margin`` → ``--margin``); without it the
    message reads ``where: key must be ...``."""
    try:
        return rule(value)
    except Invalid as exc:
        key = f"{name}.{exc.key}" if exc.key else name
        shown = exc.value if exc.key else value
        head = label(key) if label else (f"{where}: {key}" if where else key)
        raise ConfigError(f"{head} must be {exc.wanted}, got {shown!r}") from None


def check_all(values: Mapping[str, Any], rules: Mapping[str, Rule], *, where: str,
              label: Callable[[str], str] | None = None, order: Sequence[str] | None = None
              ) -> dict[str, Any]:
    """Every value checked by its rule (in ``order``), normalised."""
    out = dict(values)
    for name in order or list(values):
        if name in values and name in rules:
            out[name] = check(name, values[name], rules[name], where=where, label=label)
    return out
