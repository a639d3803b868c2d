"""JUnit XML of an audit, for CI dashboards."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from auditkit.core.result import AuditResult
from auditkit.core.settings import AuditConfig

from .format import ci, moved, num, p


def render_junit(result: AuditResult) -> str:
    """One test case per (perturbation, trait); a verdict the audit fails on (``fail_on``, by
    default ``shift`` and ``unstable``) is a failure, and the statistics ride along as properties."""
    fail_on = AuditConfig.from_record(result.config).fail_on
    failing = result.failing(fail_on)
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuites name="auditkit" tests="{len(result.tests)}" failures="{len(failing)}">',
           f'  <testsuite name={quoteattr("auditkit: " + str(result.rater.get("spec")))} '
           f'tests="{len(result.tests)}" failures="{len(failing)}" errors="0" skipped="0" '
           f'timestamp={quoteattr(result.created)}>']
    for t in result.tests:
        props = {"verdict": t.verdict, "unit": t.unit, "n": t.n, "n_clips": t.n_clips, "mean_shift": t.mean_shift,
                 "ci_low": t.ci_low, "ci_high": t.ci_high, "p_adjusted": t.p_adjusted,
                 "equivalence_p_adjusted": t.equivalence_p_adjusted, "share_moved": t.share_moved,
                 "share_moved_low": t.share_moved_low, "share_moved_high": t.share_moved_high,
                 "loa_low": t.loa_low, "loa_high": t.loa_high, "margin": t.margin, "tolerance": t.tolerance}
        out.append(f'    <testcase classname={quoteattr(t.perturbation or "")} name={quoteattr(t.trait or "")}>')
        out.append("      <properties>")
        out += [f'        <property name="{k}" value={quoteattr("" if v is None else str(v))}/>'
                for k, v in props.items()]
        out.append("      </properties>")
        if t.verdict in fail_on and t.role == "fairness":
            if t.verdict == "unstable":
                message = (f"{t.perturbation} moves {moved(t)} of candidates' {t.trait} by more than "
                           f"±{t.margin:g} (tolerance {p(t.tolerance)})")
            else:
                message = (f"{t.perturbation} gives {t.trait} the verdict {t.verdict}: shift {num(t.mean_shift)} "
                           f"(CI {ci(t)}, p adj {p(t.p_adjusted)})")
            out.append(f"      <failure message={quoteattr(message)} type={quoteattr(t.verdict)}/>")
        out.append("    </testcase>")
    out += ["  </testsuite>", "</testsuites>", ""]
    return "\n".join(out)
