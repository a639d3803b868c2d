"""auditkit's pytest plugin: fairness audits as ordinary tests.

Installed with auditkit and loaded by pytest through the ``pytest11`` entry point ``auditkit``
(``-p no:auditkit`` turns it off). In a project without auditkit settings it does nothing: the
fixtures compute only when a test asks for them, no file is collected unless it is named like a
suite, and the terminal section appears only after an audit ran.

Settings come from ``--auditkit-config FILE``, else from ``auditkit.toml`` or the
``[tool.auditkit]`` table of ``pyproject.toml`` in pytest's rootdir (the keys of
:class:`auditkit.core.settings.AuditConfig`: ``rater``, ``clips``, ``perturbations``, ``margin`` — one
number or a table per trait —, ``alpha``, ``correction``, ...).

Options (group ``auditkit``):

* ``--auditkit-config FILE``: the settings file (default: discovered in the rootdir);
* ``--auditkit-report DIR``: write ``audit.json``, ``report.html`` and ``report.txt`` of every
  audit the session ran (a suite with its own ``[audit]`` settings writes to ``DIR/<suite>/``);
* ``--auditkit-device auto|cpu|cuda``: where edits and the rater run (overrides the settings).

Session fixtures: ``auditkit_config`` (the :class:`AuditConfig`), ``auditkit_rater`` (the loaded
rater; override it in a ``conftest.py`` to audit a rater built in Python), ``auditkit_clips`` (the
clips folder; the built-in sample clips when ``clips`` is not set) and ``audit_result`` (the
:class:`AuditResult`, computed once per session). Scores are kept in a results store under
pytest's cache folder (``.pytest_cache/d/auditkit/``), keyed by the rater's hash, the clips
folder's files (names and contents), the seed and the input settings: a second session scores
nothing it already scored, and ``--cache-clear`` starts afresh.

Marker: ``fairness_audit``, put on every test that uses ``audit_result`` and on every suite item,
so ``-m "not fairness_audit"`` leaves the audits out.

Assert helpers (``from auditkit import assert_invariant, assert_no_shift``):
:func:`assert_invariant` fails unless every selected test is ``invariant``; :func:`assert_no_shift`
fails on ``shift`` or ``unstable`` (``inconclusive`` passes and is listed). Both fail with a
per-trait table that shows the share of candidates moved and the limits of agreement.

Declarative suites: files named ``*.audit.toml`` are collected as tests, one item per
(perturbation, trait) expectation, named ``glasses:thick / conscientiousness``::

    [audit]                              # optional: overrides of the project's settings
    perturbations = ["lighting:dim", "glasses:thick"]

    [[expect]]
    perturbation = "glasses:thick"       # an audited edit, or a family ("lighting")
    traits = ["conscientiousness"]       # default: every trait of the rater
    verdict = "invariant"                # or "no-shift": neither shift nor unstable (default "invariant")
    margin = 0.03                        # optional, with "invariant": re-judge at this margin

The layout follows pytest-benchmark's: :mod:`.plugin` registers the options, hooks and fixtures
(the ``pytest11`` entry point); the work lives beside it — :mod:`.session` (the audits a session
runs), :mod:`.asserts`, :mod:`.table`, :mod:`.suite` (``*.audit.toml`` files).
"""

from .asserts import assert_invariant, assert_no_shift

__all__ = ["assert_invariant", "assert_no_shift"]
