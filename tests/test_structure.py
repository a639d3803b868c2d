"""The shape of the code, checked so that later work cannot quietly undo it.

- Settings travel as one object (``AuditConfig``, ``AuditPlan``, ``ExplainSettings``): no function
  of the ``auditkit/`` folder takes more than eight parameters, and none takes a ``**`` bag or a
  settings dict in their place, except the few named below with their reason.
- A test's identity lives in its fields (``arm``, ``base``, ``family``): no module outside the
  perturbation registry parses one out of a name.
- Each shared constant has one definition; the statistics and the settings share the same objects.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

from test_layers import ROOT, modules

MAX_PARAMETERS = 8
# (file, function): why it may take a ** parameter.
KEYWORD_BAGS = {
    ("auditkit/core/engine.py", "run_audit"): "the public API (run_audit(rater, clips, perturbations, margin=...)); "
                                              "its keyword options go through the settings' rules",
    ("auditkit/core/settings.py", "override"): "the settings' own constructor: every value is checked by PARAMS",
    ("auditkit/core/result.py", "with_"): "dataclasses.replace on a frozen result: unknown field names are refused",
    ("auditkit/pytest_plugin/suite.py", "__init__"): "pytest.Item.from_parent passes its own keywords through",
    ("auditkit/raters/http_rater.py", "__init__"): "urllib3's Retry constructor, subclassed",
    ("auditkit/raters/http_rater.py", "new"): "urllib3's Retry.new, subclassed",
}
SETTINGS_NAMES = {"options", "opts", "kwargs", "settings", "config", "params"}
# Files that split text at ':' for something other than a test's name, and what they split.
COLON_SPLITTERS = {
    "auditkit/raters/factory.py": "a factory spec, file.py:name or package.module:name",
    "auditkit/raters/loader.py": "a rater spec, kind:rest or module:attr",
    "auditkit/raters/travel.py": "a rater spec, module:attr",
    "auditkit/raters/http_rater.py": "an HTTP header, Name: value",
    "auditkit/core/executors.py": "a Ray address, host:port",
    "models/train.py": "an augmentation recipe, counterfactual:EDIT",
}
REGISTRY = "perturbations/base.py"


def _trees() -> dict[str, ast.Module]:
    return {str(path.relative_to(ROOT)): ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for path in modules().values()}


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return _trees()


def _functions(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    a = node.args
    return [p for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg not in ("self", "cls")]


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (prose may mention anything)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def long_signatures(trees: dict[str, ast.Module]) -> list[str]:
    found = []
    for path, tree in trees.items():
        if not path.startswith("auditkit/"):
            continue
        for node in _functions(tree):
            params = _parameters(node)
            if len(params) > MAX_PARAMETERS and (path, node.name) not in KEYWORD_BAGS:
                found.append(f"{path}:{node.lineno} {node.name} takes {len(params)} parameters")
            if node.args.kwarg is not None and (path, node.name) not in KEYWORD_BAGS:
                found.append(f"{path}:{node.lineno} {node.name} takes **{node.args.kwarg.arg}")
            for p in params:
                text = ast.unparse(p.annotation) if p.annotation is not None else ""
                if p.arg in SETTINGS_NAMES and ("dict" in text or "Mapping" in text):
                    found.append(f"{path}:{node.lineno} {node.name} takes a dict of settings ({p.arg}: {text})")
    return found


def name_parsers(trees: dict[str, ast.Module]) -> list[str]:
    """Places outside the registry that take a test's name apart: a ' vs ' in code, a split at
    ':' in a file not known to split something else, a '(clip ' placeholder read back."""
    found = []
    for path, tree in trees.items():
        if path == REGISTRY:
            continue
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            # The separator alone is what splitting or building a contrast's name needs.
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose \
                    and node.value.strip() == "vs":
                found.append(f"{path}:{node.lineno} has the contrast separator {node.value!r}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                if node.func.attr in ("split", "partition", "rpartition", "rsplit") and ":" in args \
                        and path not in COLON_SPLITTERS:
                    found.append(f"{path}:{node.lineno} splits a name at ':' ({ast.unparse(node)})")
                if node.func.attr == "startswith" and any(isinstance(a, str) and a.startswith("(clip") for a in args):
                    found.append(f"{path}:{node.lineno} reads a placeholder back ({ast.unparse(node)})")
    return found


def definitions(trees: dict[str, ast.Module], name: str) -> list[str]:
    """Module-level assignments of ``name`` to a value (not an import, not a re-export)."""
    out = []
    for path, tree in trees.items():
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) and node.value is not None else []
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and not isinstance(
                    node.value, (ast.Name, ast.Attribute)):
                out.append(f"{path}:{node.lineno}")
    return out


def literals(trees: dict[str, ast.Module], value: str) -> list[str]:
    out = []
    for path, tree in trees.items():
        prose = _docstrings(tree)
        out += [f"{path}:{n.lineno}" for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and n.value == value and id(n) not in prose]
    return out


def test_no_function_takes_more_than_eight_parameters_or_a_bag_of_settings(trees):
    assert long_signatures(trees) == []


def test_no_test_identity_is_parsed_out_of_a_name(trees):
    assert name_parsers(trees) == []


@pytest.mark.parametrize("name", ["VERDICTS", "DEFAULT_FAIL_ON", "DEFAULT_TOLERANCE", "DEFAULT_ALPHA",
                                  "DEFAULT_MARGIN", "CORRECTIONS", "UNITS", "MIN_N", "RETEST", "ORIGINAL",
                                  "EXECUTORS", "ROLES"])
def test_each_constant_has_one_definition(trees, name):
    assert len(definitions(trees, name)) == 1, definitions(trees, name)


@pytest.mark.parametrize("name", ["VERDICT_NAMES", "ADJUST_METHODS", "FAILING"])
def test_merged_constants_are_not_defined_again(trees, name):
    assert definitions(trees, name) == []


@pytest.mark.parametrize("value", ["control:retest", "original"])
def test_a_condition_name_is_written_once(trees, value):
    assert len(literals(trees, value)) == 1, literals(trees, value)


def test_the_statistics_and_the_settings_share_their_constants():
    from auditkit import stats as public
    from auditkit.core import result, settings, stats

    assert stats.DEFAULT_TOLERANCE is settings.DEFAULT_TOLERANCE is public.DEFAULT_TOLERANCE
    assert stats.CORRECTIONS is settings.CORRECTIONS is public.CORRECTIONS
    assert stats.UNITS is settings.UNITS is public.UNITS
    assert settings.AuditConfig().fail_on is result.DEFAULT_FAIL_ON
    assert settings.PARAMS["fail_on"].rule.allowed is result.VERDICTS
    assert settings.PARAMS["alpha"].rule is stats._RULES["alpha"]
    assert settings.PARAMS["tolerance"].rule is stats._RULES["tolerance"]


@pytest.mark.parametrize("module,name,now", [("auditkit.stats", "ADJUST_METHODS", ("holm", "bh", "bonferroni", "none")),
                                             ("auditkit.core.stats", "ADJUST_METHODS", ("holm", "bh")),
                                             ("auditkit.core.settings", "VERDICT_NAMES", ("shift", "unstable"))])
def test_merged_public_names_still_work_with_a_warning(module, name, now):
    import importlib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(importlib.import_module(module), name)
    assert set(now) <= set(value)
    assert any(issubclass(w.category, DeprecationWarning) and name in str(w.message) for w in caught)


def test_the_checks_catch_what_they_forbid(tmp_path):
    # The same checks on small bad modules: each must be caught.
    bad = ast.parse(
        "def run(a, b, c, d, e, f, g, h, i):\n    pass\n"
        "def judge(db, **options):\n    pass\n"
        "def score(clip, options: dict[str, Any]):\n    pass\n"
        "def family(name):\n    return name.split(':')[0]\n"
        "def arms(name):\n    arm, _, base = name.partition(' vs ')\n"
        "def own(p):\n    return p.startswith('(clip ')\n"
        "VERDICTS = ('shift',)\n")
    found = long_signatures({"auditkit/core/bad.py": bad})
    assert [f.split(" ", 1)[1] for f in found] == [
        "run takes 9 parameters", "judge takes **options",
        "score takes a dict of settings (options: dict[str, Any])"]
    parsed = name_parsers({"auditkit/core/bad.py": bad})
    assert len(parsed) == 3 and any("' vs '" in p for p in parsed) and any("(clip" in p for p in parsed)
    assert name_parsers({REGISTRY: bad}) == []  # the registry is where names are read
    trees = _trees()
    trees["auditkit/core/bad.py"] = bad
    assert len(definitions(trees, "VERDICTS")) == 2
    assert Path(ROOT / REGISTRY).is_file()


def test_the_statistics_load_without_torch():
    # The contract package exports lazily, so a module that needs only its errors, rules or arms
    # (the statistics, the results) does not pay for torch with contract.rater.
    import subprocess
    import sys

    code = ("import sys, auditkit.stats as s; s.paired_shift_test([1, 2, 3], [1, 2, 3.5], margin=1.0); "
            "print(sorted(m for m in ('torch', 'cv2', 'auditkit.contract.rater') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
