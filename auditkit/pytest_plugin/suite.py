"""Declarative suites: ``*.audit.toml`` files collected as one test item per (edit, trait)
expectation, for teams without Python tests."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pytest

from .asserts import rejudge
from .session import clips_dir, state
from .table import about, junit_number, table

if TYPE_CHECKING:
    from auditkit.contract.arms import Arm
    from auditkit.core.result import AuditResult
    from auditkit.core.settings import AuditConfig

SUITE_SUFFIX = ".audit.toml"
EXPECTATIONS = ("invariant", "no-shift")


@dataclasses.dataclass(frozen=True)
class _Expect:
    index: int
    perturbation: str
    traits: tuple[str, ...] | None
    verdict: str
    margin: float | None
    line: int | None


class AuditSuiteFile(pytest.File):
    """A ``*.audit.toml`` file: one :class:`AuditItem` per (perturbation, trait) expected."""

    def _bad(self, why: str) -> "pytest.Collector.CollectError":
        return self.CollectError(f"{self.path}: {why}")

    def collect(self) -> Iterable[pytest.Item]:
        from auditkit.contract.errors import AuditkitError
        from auditkit.core.settings import read_toml

        try:
            data = read_toml(self.path)
        except AuditkitError as exc:
            raise self.CollectError(str(exc)) from None
        unknown = sorted(set(data) - {"audit", "expect"})
        if unknown:
            raise self._bad(f"unknown key {unknown[0]!r} (a suite has [audit] and [[expect]] tables)")
        session = state(self.config)
        try:
            cfg = self._settings(session.project_config(), data.get("audit", {}))
        except AuditkitError as exc:
            raise self.CollectError(str(exc)) from None
        except pytest.UsageError as exc:
            raise self.CollectError(f"{self.path}: {exc}") from None
        expects = self._expectations(data.get("expect"))
        if not cfg.rater:
            raise self._bad("no rater configured: set rater = \"...\" in [audit] of this suite, or in "
                            "[tool.auditkit] of pyproject.toml or auditkit.toml in the rootdir "
                            f"({self.config.rootpath}), or pass --auditkit-config FILE")
        try:
            rater = session.rater(cfg)
        except pytest.UsageError as exc:
            raise self.CollectError(f"{self.path}: {str(exc).removeprefix('auditkit: ')}") from None
        audited = self._audited(cfg)
        seen: dict[str, int] = {}
        for ex in expects:
            for trait in ex.traits or ():
                if trait not in rater.trait_names:
                    raise self._bad(f"expect[{ex.index}].traits: {trait!r} is not a trait of the rater "
                                    f"({', '.join(rater.trait_names)})")
            names = [a.name for a in audited if a.name == ex.perturbation
                     or (not a.is_contrast and a.family == ex.perturbation)]
            if not names:
                raise self._bad(f"expect[{ex.index}].perturbation: {ex.perturbation!r} is not audited "
                                f"(audited: {', '.join(a.name for a in audited)}); add it to perturbations in [audit]")
            for name in names:
                for trait in ex.traits or rater.trait_names:
                    item_name = f"{name} / {trait}"
                    if item_name in seen:
                        raise self._bad(f"expect[{ex.index}] repeats {item_name!r} of expect[{seen[item_name]}]")
                    seen[item_name] = ex.index
                    item = AuditItem.from_parent(self, name=item_name, suite=self, settings=cfg,
                                                 perturbation=name, trait=trait, expect=ex)
                    item.add_marker("fairness_audit")
                    yield item

    def _settings(self, project: "AuditConfig", overrides: Any) -> "AuditConfig":
        from auditkit.core.settings import AuditConfig

        if not isinstance(overrides, dict):
            raise self._bad("[audit] must be a table of settings")
        where = f"{self.path} [audit]"
        if not overrides:
            return project
        from auditkit.core.settings import rebase

        values = rebase(overrides, self.path.parent)  # relative to the suite file, as in a config file
        merged = {**project.to_dict(), **values}
        cfg = AuditConfig.from_mapping(merged, source=where)
        device = self.config.getoption("auditkit_device", None)
        return cfg.override(source="--auditkit-device", device=device) if "device" in values else cfg

    def _expectations(self, raw: Any) -> list[_Expect]:
        from auditkit.contract.errors import AuditkitError
        from auditkit.contract.params import Names, Number, OneOf, Text, check

        if raw is None:
            raise self._bad("no [[expect]] tables: say what each edit must not do, e.g.\n"
                            "[[expect]]\nperturbation = \"lighting:dim\"\nverdict = \"invariant\"")
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            raise self._bad("expect must be an array of tables ([[expect]])")
        lines = [i + 1 for i, line in enumerate(self.path.read_text(encoding="utf-8").splitlines())
                 if re.match(r"\s*\[\[\s*expect\s*\]\]", line)]
        rules = {"perturbation": Text(), "traits": Names(), "verdict": OneOf(EXPECTATIONS),
                 "margin": Number(0.0, None, low_open=True, text="a positive number")}
        out = []
        for i, entry in enumerate(raw):
            key = f"expect[{i}]"
            unknown = sorted(set(entry) - set(rules))
            if unknown:
                raise self._bad(f"{key}: unknown key {unknown[0]!r} (known: {', '.join(rules)})")
            try:
                got = {name: check(f"{key}.{name}", entry[name], rule, where=str(self.path))
                       for name, rule in rules.items() if name in entry}
            except AuditkitError as exc:
                raise self.CollectError(str(exc)) from None
            if "perturbation" not in got:
                raise self._bad(f"{key}.perturbation is missing: name an edit such as \"glasses:thick\"")
            verdict = got.get("verdict", "invariant")
            if "margin" in got and verdict != "invariant":
                raise self._bad(f"{key}.margin applies only to verdict = \"invariant\"")
            out.append(_Expect(i, got["perturbation"].strip(), got.get("traits"), verdict, got.get("margin"),
                               lines[i] if i < len(lines) else None))
        return out

    def _audited(self, cfg: "AuditConfig") -> "tuple[Arm, ...]":
        """Every test the audit will have: edits (families resolved) and contrasts, known before
        any rater is loaded."""
        from auditkit.contract.errors import AuditkitError
        from auditkit.core.plan import AuditPlan

        try:
            return AuditPlan.build(cfg).arms
        except AuditkitError as exc:
            raise self._bad(f"perturbations: {str(exc).removeprefix('--perturb: ')}") from None

    def audit(self, cfg: "AuditConfig") -> "AuditResult":
        __tracebackhide__ = True
        session = state(self.config)
        project = session.project_config()
        label = ""
        if cfg != project:  # its own audit: reported under the suite's path without the suffix
            where = (self.path.relative_to(self.config.rootpath)
                     if self.path.is_relative_to(self.config.rootpath) else Path(self.path.name))
            label = where.as_posix()[: -len(SUITE_SUFFIX)]
        return session.audit(cfg, rater=session.rater(cfg), clips=clips_dir(cfg), label=label)


@dataclasses.dataclass
class _Crash:
    """What pytest prints on the short summary line (and as the JUnit failure message)."""

    path: str
    lineno: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"

    def toterminal(self, tw: Any) -> None:
        tw.line(str(self))


class _AuditRepr:
    def __init__(self, text: str, crash: _Crash) -> None:
        self.text = text
        self.reprcrash = crash

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


class _ExpectationFailed(Exception):
    def __init__(self, headline: str, text: str) -> None:
        super().__init__(headline)
        self.headline = headline
        self.text = text


class AuditItem(pytest.Item):
    """One expectation about one (perturbation, trait) test of an audit."""

    def __init__(self, *, suite: AuditSuiteFile, settings: "AuditConfig", perturbation: str,
                 trait: str, expect: _Expect, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.settings = settings
        self.perturbation = perturbation
        self.trait = trait
        self.expect = expect

    def runtest(self) -> None:
        __tracebackhide__ = True
        from auditkit.core.report.format import VERDICT_MEANING, moved, num, p, shout

        result = self.suite.audit(self.settings)
        session = state(self.config)
        try:
            test = result.test(self.perturbation, self.trait)
        except KeyError as exc:
            raise _ExpectationFailed(f"no such test in the audit: {exc.args[0]}", exc.args[0]) from None
        if self.expect.margin is not None:
            test = rejudge(result, [test], self.expect.margin, store=session.store_of(result))[0]
        self.user_properties += [
            ("perturbation", self.perturbation), ("trait", self.trait),
            ("expected", self.expect.verdict), ("verdict", test.verdict), ("n", str(test.n)),
            ("mean_shift", junit_number(test.mean_shift)), ("ci_low", junit_number(test.ci_low)),
            ("ci_high", junit_number(test.ci_high)), ("p_adjusted", junit_number(test.p_adjusted)),
            ("equivalence_p_adjusted", junit_number(test.equivalence_p_adjusted)),
            ("share_moved", junit_number(test.share_moved)), ("margin", junit_number(test.margin))]
        if self.expect.verdict == "invariant":
            ok = test.verdict == "invariant"
        else:
            from auditkit.core.result import DEFAULT_FAIL_ON

            ok = test.verdict not in DEFAULT_FAIL_ON
            if test.verdict == "inconclusive":
                session.inconclusive.append((self.nodeid, [test]))
        if not ok:
            headline = (f"expected {self.expect.verdict}, got {shout(test.verdict)}: shift {num(test.mean_shift)} "
                        f"[{num(test.ci_low)}, {num(test.ci_high)}], p adj {p(test.p_adjusted)}, "
                        f"moved {moved(test)}, margin {test.margin:g}")
            reason = VERDICT_MEANING[test.verdict]
            if test.verdict == "inconclusive" and test.n_needed:
                reason += f"; about {test.n_needed} {'people' if test.unit == 'person' else 'clips'} would decide"
            text = (f"{self.name}: {headline}\n{table([test], [test])}\n{reason}\n"
                    f"suite {self.suite.path.name}, expect[{self.expect.index}]; audit: {about(result)}")
            raise _ExpectationFailed(headline, text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        exc = excinfo.value
        if isinstance(exc, _ExpectationFailed):
            return _AuditRepr(exc.text, _Crash(str(self.path), self.expect.line or 0, exc.headline))
        if isinstance(exc, pytest.UsageError):
            return str(exc)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.expect.line - 1 if self.expect.line else None), self.name
