"""``assert_invariant`` and ``assert_no_shift``: audit verdicts as assertions with readable failures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .session import CURRENT_ITEM, STATE
from .table import failure_message, junit_number

if TYPE_CHECKING:
    from auditkit.core.result import AuditResult, ShiftTest


def assert_invariant(result: Any, perturbation: str | Iterable[str] | None = None,
                     traits: str | Iterable[str] | None = None,
                     margin: float | Mapping[str, float] | None = None) -> None:
    """Fail unless every selected test's verdict is ``invariant``: the mean shift proven inside the
    margin and the share of candidates moved beyond it proven below the tolerance.

    ``result``: an :class:`AuditResult` (the ``audit_result`` fixture), its ``to_dict()`` form, or
    the path of an ``audit.json`` (or of its folder); ``perturbation``: an edit
    (``"glasses:thick"``), a family (``"glasses"``) or several, ``None`` for all; ``traits``: one
    trait or several, ``None`` for all. Selecting nothing fails.

    ``margin`` (a number, or ``{trait: number}`` with an optional ``"default"``) re-judges the
    selected tests against that margin instead of the audit's, from the run's stored scores: every
    statistic is recomputed and the audit's correction applied again across its whole family —
    the verdict the audit would have given had it been run with that margin for those tests. It
    needs the scores: the ``audit_result`` fixture, or an ``audit.json`` with its
    ``results.sqlite`` beside it. ``inconclusive`` is not a pass.
    """
    __tracebackhide__ = True
    result, store = _as_result(result)
    tests = _select(result, perturbation, traits, "assert_invariant")
    if margin is not None:
        tests = rejudge(result, tests, margin, store=store)
    failed = [t for t in tests if t.verdict != "invariant"]
    _record(tests)
    if failed:
        raise AssertionError(failure_message("assert_invariant", result, tests, failed, "not invariant",
                                             _which(perturbation)))


def assert_no_shift(result: Any, perturbation: str | Iterable[str] | None = None,
                    traits: str | Iterable[str] | None = None) -> None:
    """Fail when a selected test's verdict is ``shift`` (a systematic shift) or ``unstable``
    (candidates moved beyond the margin, in either direction). ``inconclusive`` passes, and is
    listed in the terminal summary with the units it would need; arguments as :func:`assert_invariant`."""
    __tracebackhide__ = True
    result, _ = _as_result(result)
    tests = _select(result, perturbation, traits, "assert_no_shift")
    from auditkit.core.result import DEFAULT_FAIL_ON

    failed = [t for t in tests if t.verdict in DEFAULT_FAIL_ON]
    _record(tests)
    if failed:
        raise AssertionError(failure_message("assert_no_shift", result, tests, failed, "shift or unstable",
                                             _which(perturbation)))
    unsure = [t for t in tests if t.verdict == "inconclusive"]
    item = CURRENT_ITEM.get()
    if unsure and item is not None and STATE in item.config.stash:
        item.config.stash[STATE].inconclusive.append((item.nodeid, unsure))


def _as_result(result: Any) -> tuple["AuditResult", Path | None]:
    """The result, and the results store its scores are in (when one is known)."""
    __tracebackhide__ = True
    from auditkit.core.result import AuditResult

    if isinstance(result, AuditResult):
        item = CURRENT_ITEM.get()
        session = item.config.stash.get(STATE, None) if item is not None else None
        return result, session.store_of(result) if session is not None else None
    if isinstance(result, Mapping):
        return AuditResult.from_dict(result), None
    if isinstance(result, (str, os.PathLike)):
        path = Path(result)
        if path.is_dir():
            path = path / "audit.json"
        store = path.parent / "results.sqlite"
        return (AuditResult.from_dict(json.loads(path.read_text(encoding="utf-8"))),
                store if store.is_file() else None)
    raise TypeError(f"result must be an AuditResult, its to_dict() or an audit.json path, "
                    f"got {type(result).__name__}")


def names(value: str | Iterable[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    out = (value,) if isinstance(value, str) else tuple(value)
    if not out or not all(isinstance(n, str) and n for n in out):
        raise TypeError(f"{what} must be a name or a non-empty list of names, got {value!r}")
    return out


def _which(perturbation: Any) -> str:
    picked = names(perturbation, "perturbation")
    return ", ".join(picked) if picked else "all perturbations"


def _select(result: "AuditResult", perturbation: Any, traits: Any, helper: str) -> list["ShiftTest"]:
    __tracebackhide__ = True
    perts = names(perturbation, "perturbation")
    wanted = names(traits, "traits")
    unknown = [t for t in wanted or () if t not in result.traits]
    if unknown:
        raise AssertionError(f"{helper}: {unknown[0]!r} is not a trait of this audit "
                             f"(traits: {', '.join(result.traits)})")
    try:
        tests = list(result.select(perts, wanted))
    except KeyError:  # AuditResult.select refuses names it does not have
        tests = []
    if not tests:
        raise AssertionError(f"{helper}: the audit has no test for perturbation "
                             f"{', '.join(perts or ())!r} (audited: {', '.join(result.perturbations)})")
    return tests


def rejudge(result: "AuditResult", tests: Sequence["ShiftTest"], margin: Any, *,
            store: Path | None) -> list["ShiftTest"]:
    """``tests`` of ``result`` judged again at ``margin``, from the scores in ``store``."""
    __tracebackhide__ = True
    from auditkit.contract.errors import AuditkitError
    from auditkit.core.engine import rejudge as engine_rejudge
    from auditkit.core.settings import AuditConfig
    from auditkit.core.store import Store

    try:
        given = AuditConfig.from_mapping({"margin": margin}, source="margin").margin  # the settings' own rule
        if isinstance(given, Mapping):
            AuditConfig(margin=given).margins(result.traits)  # a key that is no trait is an error
    except AuditkitError as exc:
        raise ValueError(str(exc).removeprefix("margin: ")) from None

    def margin_for(t: "ShiftTest") -> float:  # a trait the table does not name keeps its own margin
        return given.get(t.trait, given.get("default", t.margin)) if isinstance(given, Mapping) else given

    if store is None:
        raise ValueError("re-judging at another margin needs the run's scores: pass the audit_result "
                         "fixture, or the path of an audit.json with its results.sqlite beside it")
    db = Store.open_readonly(store)
    try:
        again = engine_rejudge(db, result, {(t.perturbation, t.trait): margin_for(t) for t in tests})
    finally:
        db.close()
    judged = {(t.perturbation, t.trait): t for t in again.tests}
    return [judged[(t.perturbation, t.trait)] for t in tests]


def _record(tests: Sequence["ShiftTest"]) -> None:
    item = CURRENT_ITEM.get()
    if item is None:
        return
    for t in tests:
        cell = f"{t.perturbation} / {t.trait}"
        item.user_properties += [(f"{cell} verdict", t.verdict),
                                 (f"{cell} mean_shift", junit_number(t.mean_shift)),
                                 (f"{cell} share_moved", junit_number(t.share_moved)),
                                 (f"{cell} p_adjusted", junit_number(t.p_adjusted))]
