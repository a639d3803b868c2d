"""The pytest plugin, driven through ``pytester`` as a user's project would drive it.

Projects here audit tiny synthetic clips with the TorchScript raters of ``conftest.py`` and
lighting edits only (no face annotation), so each inner session takes well under a second.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

# Imported here, before pytester snapshots sys.modules: inner sessions run in this process and
# must find torch, OpenCV and the edits already loaded rather than import them a second time.
import auditkit.raters.builtin  # noqa: F401
import auditkit.core.engine  # noqa: F401
import auditkit.core.report  # noqa: F401
import auditkit.perturbations  # noqa: F401
from auditkit import stats
from auditkit.pytest_plugin import assert_invariant, assert_no_shift
from auditkit.core.result import AuditResult
from auditkit.media.video import write_video

pytest_plugins = ["pytester"]

SECTION = re.compile(r"^=+ auditkit =+$", re.M)  # the terminal summary section
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


@pytest.fixture(autouse=True)
def _entry_points_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inner sessions must find the plugin the way users do: through its pytest11 entry point.
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)


@pytest.fixture(scope="module")
def tiny_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small clips of different brightness and texture: fast to decode and to edit."""
    folder = tmp_path_factory.mktemp("tiny-clips")
    rng = np.random.default_rng(3)
    for i in range(6):
        base = rng.uniform(40, 200, size=(1, 48, 64, 3))
        frames = base + rng.normal(0, 20, size=(8, 48, 64, 3))
        write_video(folder / f"clip{i}.avi", np.clip(frames, 0, 255).astype(np.uint8), fps=8)
    return folder


def project(pytester: pytest.Pytester, rater: Path | str, clips: Path, *,
            edits: str = '["lighting:dim", "lighting:bright"]', extra: str = "", retest: bool = False) -> None:
    # Without the retest control unless a test is about it: the plugin's tests count conditions.
    pytester.makepyprojecttoml(textwrap.dedent(f"""
        [tool.auditkit]
        rater = "{rater}"
        clips = "{clips}"
        perturbations = {edits}
        retest = {str(retest).lower()}
        {extra}
    """))


TESTS = """
    from auditkit.pytest_plugin import assert_invariant, assert_no_shift

    def test_lighting_is_invariant(audit_result):
        assert_invariant(audit_result, "lighting")

    def test_dim_does_not_shift_conscientiousness(audit_result):
        assert_no_shift(audit_result, "lighting:dim", traits="conscientiousness")
"""

SUITE = """
    [[expect]]
    perturbation = "lighting:dim"
    traits = ["conscientiousness", "openness"]

    [[expect]]
    perturbation = "lighting:bright"
    traits = "neuroticism"
    verdict = "no-shift"
"""


def test_entry_point_registers_the_plugin():
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "auditkit"]
    assert [ep.value for ep in found] == ["auditkit.pytest_plugin.plugin"]


def test_invariant_rater_passes_and_the_summary_lists_every_verdict(pytester, constant_rater_path,
                                                                    tiny_clips):
    project(pytester, constant_rater_path, tiny_clips)
    pytester.makepyfile(test_audit=TESTS)
    pytester.makefile(".audit.toml", fairness=SUITE)
    result = pytester.runpytest("-v", "--auditkit-report", "out")
    result.assert_outcomes(passed=5)
    out = result.stdout.str()
    for name in ("lighting:dim / conscientiousness", "lighting:dim / openness",
                 "lighting:bright / neuroticism"):
        result.stdout.fnmatch_lines([f"fairness.audit.toml::{name} PASSED*"])
    assert SECTION.search(out)
    for pert in ("lighting:dim", "lighting:bright"):
        for trait in TRAITS:
            result.stdout.re_match_lines([rf"^{pert}\s+{trait}\s+6\s+\+0\.000\s.*\sinvariant$"])
    assert "10 tests on 6 clips: 0 shift, 0 unstable, 10 invariant, 0 inconclusive" in out
    assert "Unit of analysis: clips (the clips carry no subject_id column)" in out
    # The suite has no [audit] table of its own: it shares the project's audit, which ran once.
    assert out.count("project audit: rater") == 1 and "suite " not in out
    report = pytester.path / "out"
    data = json.loads((report / "audit.json").read_text())
    assert len(data["tests"]) == 10 and {t["verdict"] for t in data["tests"]} == {"invariant"}
    assert "lighting:bright" in (report / "report.html").read_text()
    assert "10 invariant" in (report / "report.txt").read_text()


def test_biased_rater_fails_with_the_table_and_hides_the_helper(pytester, brightness_rater_path,
                                                                tiny_clips):
    project(pytester, brightness_rater_path, tiny_clips)
    pytester.makepyfile(test_audit=TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "E  *AssertionError: assert_invariant: 10 of 10 tests not invariant for lighting (6 clips, *",
        "E  *perturbation * trait * n * shift * 95% CI * p adj * moved beyond margin * limits of agreement * "
        "margin * verdict",
        "E  *lighting:dim * openness * 6 * -0.* [[]-0.*, -0.*[]] * <0.001 * *% [[]*%, *%[]] * [[]-0.*, -0.*[]] * "
        "SHIFT * <- fails",
        "E  *AssertionError: assert_no_shift: 1 of 1 tests shift or unstable for lighting:dim (6 clips, *",
        "E  *trait * n * shift * 95% CI *",
        "E  *conscientiousness * 6 * +0.* SHIFT * <- fails",
    ])
    out = result.stdout.str()
    assert "pytest_plugin.py" not in out and "__tracebackhide__" not in out
    result.stdout.fnmatch_lines(["test_audit.py:*: AssertionError"])


def test_declarative_items_fail_by_name_with_a_one_row_table(pytester, brightness_rater_path,
                                                             tiny_clips, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the short summary line is cut to the terminal's width
    project(pytester, brightness_rater_path, tiny_clips)
    pytester.makefile(".audit.toml", fairness=SUITE)
    result = pytester.runpytest("-rA")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*_ lighting:dim / conscientiousness _*",
        "lighting:dim / conscientiousness: expected invariant, got SHIFT: shift +0.* p adj <0.001, moved *, "
        "margin 0.05",
        "trait * n * shift * 95% CI * p adj * moved beyond margin * limits of agreement * margin * verdict",
        "conscientiousness * 6 * +0.* SHIFT * <- fails",
        "the mean shift is significant after correction and not proven smaller than the margin",
        "suite fairness.audit.toml, expect[[]0]; audit: 6 clips, alpha 0.05, tolerance 0.05, holm correction, "
        "rater *",
    ])
    result.stdout.fnmatch_lines([
        "FAILED fairness.audit.toml::lighting:dim / conscientiousness - expected invariant, got SHIFT*",
        "FAILED fairness.audit.toml::lighting:dim / openness - expected invariant*",
        "FAILED fairness.audit.toml::lighting:bright / neuroticism - expected no-shift*",
    ])
    failures = [r for r in result.stdout.lines if r.startswith("trait ")]
    assert len(failures) == 3  # one one-row table per failing item


def test_collect_only_lists_items_one_per_perturbation_and_trait(pytester, constant_rater_path,
                                                                 tiny_clips):
    project(pytester, constant_rater_path, tiny_clips)
    pytester.makefile(".audit.toml", fairness="""
        [[expect]]
        perturbation = "lighting"        # a family: each audited variant
        traits = ["openness"]
    """)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["fairness.audit.toml::lighting:dim / openness",
                                 "fairness.audit.toml::lighting:bright / openness",
                                 "2 tests collected*"])
    assert not SECTION.search(result.stdout.str())  # collecting does not audit


def test_suite_with_own_settings_runs_its_own_audit_and_report(pytester, constant_rater_path,
                                                               brightness_rater_path, tiny_clips):
    project(pytester, constant_rater_path, tiny_clips)
    pytester.makepyfile(test_audit=TESTS)
    suites = pytester.mkdir("suites")
    (suites / "biased.audit.toml").write_text(textwrap.dedent(f"""
        [audit]
        rater = "{brightness_rater_path}"
        perturbations = ["lighting:warm"]
        margin = 0.5

        [[expect]]
        perturbation = "lighting:warm"
        traits = ["openness"]
    """))
    result = pytester.runpytest("--auditkit-report", "out")
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert "project audit: rater" in out and "suite suites/biased: rater" in out
    assert (pytester.path / "out" / "audit.json").is_file()
    inner = json.loads((pytester.path / "out" / "suites" / "biased" / "audit.json").read_text())
    assert [t["perturbation"] for t in inner["tests"]] == ["lighting:warm"] * 5


def test_assert_no_shift_passes_inconclusive_and_the_summary_lists_it(pytester):
    pytester.makepyfile(test_unsure="""
        import numpy as np
        from auditkit import stats
        from auditkit.core.result import AuditResult
        from auditkit.pytest_plugin import assert_no_shift

        def test_unsure():
            before = np.zeros(5)
            after = np.array([0.03, -0.04, 0.06, -0.01, 0.02])
            test = stats.paired_shift_test(before, after, margin=0.05, perturbation="glasses:thick",
                                           trait="openness")
            assert test.verdict == "inconclusive"
            result = AuditResult(rater={"spec": "x"}, traits=("openness",), n_clips=5,
                                 config={"alpha": 0.05, "correction": "holm"}, tests=(test,))
            assert_no_shift(result, "glasses")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*= auditkit =*",
        "passed with inconclusive tests (assert_no_shift / verdict = \"no-shift\"):",
        "  test_unsure.py::test_unsure: glasses:thick / openness (about * clips would decide)",
    ])


def test_junit_properties_per_test(pytester, brightness_rater_path, tiny_clips):
    project(pytester, brightness_rater_path, tiny_clips)
    pytester.makepyfile(test_audit=TESTS)
    pytester.makefile(".audit.toml", fairness=SUITE)
    pytester.runpytest("--junitxml", "junit.xml")
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["lighting:dim / openness"].iter("property")}
    assert props["perturbation"] == "lighting:dim" and props["trait"] == "openness"
    assert props["expected"] == "invariant" and props["verdict"] == "shift"
    assert float(props["mean_shift"]) < 0 and float(props["p_adjusted"]) < 0.05
    failure = cases["lighting:dim / openness"].find("failure")
    assert failure.get("message").startswith("expected invariant, got SHIFT")
    helper = {p.get("name"): p.get("value")
              for p in cases["test_dim_does_not_shift_conscientiousness"].iter("property")}
    assert helper["lighting:dim / conscientiousness verdict"] == "shift"
    assert float(helper["lighting:dim / conscientiousness mean_shift"]) > 0


def test_second_session_reuses_the_scores(pytester, tiny_clips):
    pytester.makepyfile(counting_rater="""
        import torch
        from pathlib import Path
        from auditkit.raters import InputSpec

        class Counting:
            trait_names = ("openness", "conscientiousness", "extraversion", "agreeableness",
                           "neuroticism")
            input = InputSpec(size=(32, 32), frames=2)
            name = "counting"
            identity = "counting-v1"

            def __call__(self, x):
                with open(Path(__file__).with_name("calls.txt"), "a") as fh:
                    fh.write(f"{x.shape[0]}\\n")
                return torch.full((x.shape[0], 5), 0.5)

        def make():
            return Counting()
    """)
    project(pytester, "counting_rater.py:make", tiny_clips)
    pytester.makepyfile(test_audit=TESTS)
    calls = pytester.path / "calls.txt"
    pytester.runpytest().assert_outcomes(passed=2)
    first = calls.read_text()
    assert sum(int(n) for n in first.split()) == 6 * 3  # originals + two edits
    assert list((pytester.path / ".pytest_cache" / "d" / "auditkit").glob("scores-*/results.sqlite"))
    pytester.runpytest().assert_outcomes(passed=2)
    assert calls.read_text() == first  # nothing scored again
    (pytester.path / "pyproject.toml").write_text(
        (pytester.path / "pyproject.toml").read_text().replace('"lighting:bright"', '"lighting:warm"'))
    pytester.runpytest().assert_outcomes(passed=2)
    assert sum(int(n) for n in calls.read_text().split()) == 6 * 4  # only the new edit


def test_marker_leaves_the_audits_out(pytester, constant_rater_path, tiny_clips):
    project(pytester, constant_rater_path, tiny_clips)
    pytester.makepyfile(test_audit=TESTS, test_plain="def test_plain():\n    pass\n")
    pytester.makefile(".audit.toml", fairness=SUITE)
    result = pytester.runpytest("-m", "not fairness_audit", "--strict-markers")
    result.assert_outcomes(passed=1, deselected=5)
    assert not SECTION.search(result.stdout.str())


def test_plugin_is_inert_without_settings(pytester):
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.makefile(".toml", data='[[expect]]\nperturbation = "x"\n')  # not a suite name
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not SECTION.search(result.stdout.str())
    fixtures = pytester.runpytest("--fixtures").stdout.str()
    for name in ("auditkit_config", "auditkit_rater", "auditkit_clips", "audit_result"):
        assert name in fixtures
    help_text = pytester.runpytest("--help").stdout.str()
    assert "auditkit fairness audits:" in help_text and "--auditkit-report=DIR" in help_text


def test_missing_rater_is_a_clear_usage_error(pytester):
    pytester.makepyfile(test_audit=TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["E  *pytest.UsageError: auditkit: no rater configured: set rater = *"
                                 "[tool.auditkit]*or pass --auditkit-config FILE"])
    missing = pytester.runpytest("--auditkit-config", "nope.toml")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*--auditkit-config nope.toml: file does not exist*"])


def test_a_failing_rater_errors_every_audit_test_once_with_its_message(pytester, tiny_clips):
    pytester.makepyfile(nan_rater="""
        import torch
        from auditkit.raters import InputSpec

        class NaN:
            trait_names = ("openness", "conscientiousness", "extraversion", "agreeableness",
                           "neuroticism")
            input = InputSpec(size=(32, 32), frames=2)

            def __call__(self, x):
                return torch.full((x.shape[0], 5), float("nan"))

        def make():
            return NaN()
    """)
    project(pytester, "nan_rater.py:make", tiny_clips)
    pytester.makepyfile(test_audit=TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["E  *pytest.UsageError: auditkit: *nan_rater.py:make*NaN*",
                                 "*= auditkit =*",
                                 "project audit: the audit failed: *nan_rater.py:make*NaN*"])
    assert result.stdout.str().count("the audit failed") == 1


def test_config_file_option_and_device_option(pytester, constant_rater_path, tiny_clips):
    (pytester.path / "audit-settings.toml").write_text(textwrap.dedent(f"""
        rater = "{constant_rater_path}"
        clips = "{tiny_clips}"
        perturbations = ["lighting:gamma"]
        [margin]
        default = 0.05
        neuroticism = 0.02
    """))
    pytester.makepyfile(test_cfg="""
        from auditkit.pytest_plugin import assert_invariant

        def test_settings(auditkit_config, auditkit_clips, auditkit_rater, audit_result):
            assert auditkit_config.device == "cpu"
            assert auditkit_config.perturbations == ("lighting:gamma",)
            assert auditkit_clips.is_dir()
            assert auditkit_rater.trait_names[0] == "openness"
            assert audit_result.test("lighting:gamma", "neuroticism").margin == 0.02
            assert_invariant(audit_result, "lighting:gamma")
    """)
    result = pytester.runpytest("--auditkit-config", "audit-settings.toml", "--auditkit-device", "cpu")
    result.assert_outcomes(passed=1)


BROKEN_SUITES = [
    ("[[expect]]\nperturbation = \"lighting:dim\"\nverdict = \"fair\"\n",
     "expect[0].verdict must be one of invariant, no-shift, got 'fair'"),
    ("[[expect]]\nperturbation = \"glasses:thick\"\n",
     "expect[0].perturbation: 'glasses:thick' is not audited (audited: lighting:dim, lighting:bright)"),
    ("[[expect]]\nperturbation = \"lighting:dim\"\ntraits = [\"honesty\"]\n",
     "expect[0].traits: 'honesty' is not a trait of the rater"),
    ("[[expect]]\nperturbation = \"lighting:dim\"\nverdict = \"no-shift\"\nmargin = 0.1\n",
     'expect[0].margin applies only to verdict = "invariant"'),
    ("[[expect]]\nperturbation = \"lighting:dim\"\n[[expect]]\nperturbation = \"lighting\"\n",
     "expect[1] repeats 'lighting:dim / openness' of expect[0]"),
    ("[[expect]]\nperturbation = \"lighting:dim\"\nweight = 2\n", "expect[0]: unknown key 'weight'"),
    ("[audit]\nalpha = 2\n[[expect]]\nperturbation = \"lighting:dim\"\n",
     "[audit]: alpha must be a number between 0 and 0.5, got 2"),
    ("[audit]\nperturbations = [\"nosuch:edit\"]\n[[expect]]\nperturbation = \"nosuch:edit\"\n",
     "perturbations: "),
    ("[audits]\n", "unknown key 'audits'"),
    ("[[expect]\n", "not valid TOML"),
    ("", "no [[expect]] tables"),
]


def test_invalid_suites_are_collection_errors_naming_file_and_key(pytester, constant_rater_path,
                                                                  tiny_clips):
    project(pytester, constant_rater_path, tiny_clips)
    for i, (body, _) in enumerate(BROKEN_SUITES):
        (pytester.path / f"broken{i}.audit.toml").write_text(body)
    pytester.makefile(".audit.toml", good="[[expect]]\nperturbation = \"lighting:dim\"\n")
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert out.count("ERROR collecting ") == len(BROKEN_SUITES) and "ERROR collecting good" not in out
    for i, (_, message) in enumerate(BROKEN_SUITES):
        assert f"ERROR collecting broken{i}.audit.toml" in out
        assert any(f"broken{i}.audit.toml" in line and message in line
                   for line in result.stdout.lines), (message, out)


# --------------------------------------------------------------------------- helpers, directly
def _saved(folder: Path, diffs: dict[tuple[str, str], np.ndarray], *, margin: float = 0.05,
           correction: str = "holm") -> Path:
    """A run on disk as ``auditkit run`` leaves it: results.sqlite with each clip's scores, and the
    audit.json judged from them. Returns the path of audit.json."""
    from auditkit.core import engine
    from auditkit.core.store import ORIGINAL, Store

    folder.mkdir(parents=True, exist_ok=True)
    traits = tuple(dict.fromkeys(t for _, t in diffs))
    n = len(next(iter(diffs.values())))
    db = Store(folder / "results.sqlite")
    db.bind({"rater_hash": "test", "traits": list(traits)})
    for i in range(n):
        db.add_clip(f"c{i:02d}", path=None, content_hash=f"h{i}", frames=1, fps=1.0, metadata={})
        db.add_scores(f"c{i:02d}", ORIGINAL, traits, [0.5] * len(traits))
    for (pert, trait), d in diffs.items():
        for i, x in enumerate(d):
            db.db.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", (f"c{i:02d}", pert, trait, 0.5 + x))
    db.commit()
    draft = [stats.paired_shift_test(np.zeros(d.size), d, margin=margin, perturbation=p, trait=t)
             for (p, t), d in diffs.items()]
    skeleton = AuditResult(rater={"spec": "test"}, traits=traits, n_clips=n,
                           config={"alpha": 0.05, "correction": correction, "tolerance": 0.05}, tests=tuple(draft))
    result = engine.rejudge(db, skeleton, {})
    db.close()
    (folder / "audit.json").write_text(json.dumps(result.to_dict()))
    return folder / "audit.json"


def _load(path: Path) -> AuditResult:
    return AuditResult.from_dict(json.loads(path.read_text()))


@pytest.fixture
def mixed(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    return _saved(tmp_path / "mixed", {("glasses:thick", "openness"): 0.08 + rng.normal(0, 0.005, 30),
                                       ("glasses:thick", "neuroticism"): rng.normal(0, 0.005, 30),
                                       ("lighting:dim", "openness"): rng.normal(0, 0.015, 30),
                                       ("lighting:dim", "neuroticism"): rng.normal(0.001, 0.002, 30)})


def test_helpers_select_by_family_and_trait(mixed):
    result = _load(mixed)
    assert_invariant(result, "glasses:thick", traits="neuroticism")
    assert_no_shift(result, "lighting")
    with pytest.raises(AssertionError, match=r"1 of 2 tests not invariant for glasses"):
        assert_invariant(result, "glasses")
    with pytest.raises(AssertionError, match="1 of 4 tests shift or unstable for all perturbations"):
        assert_no_shift(result)
    assert_invariant(str(mixed), "glasses:thick", traits=["neuroticism"])
    assert_invariant(result.to_dict(), "lighting:dim", traits="neuroticism")


def test_an_unstable_edit_fails_both_helpers_with_the_share_moved(tmp_path):
    # Mean zero, but every candidate moved by ±0.2: not a shift, yet nobody may call it invariant.
    rng = np.random.default_rng(1)
    path = _saved(tmp_path / "wild", {("background:bookshelf", "openness"): rng.choice([-0.2, 0.2], 40)
                                      + rng.normal(0, 0.01, 40)})
    assert _load(path).tests[0].verdict == "unstable"
    with pytest.raises(AssertionError) as info:
        assert_invariant(path, "background:bookshelf")
    text = str(info.value)
    assert "UNSTABLE" in text and "moved beyond margin" in text and "100% [" in text and "limits of agreement" in text
    with pytest.raises(AssertionError, match="1 of 1 tests shift or unstable"):
        assert_no_shift(path, "background")


def test_helpers_refuse_what_the_audit_does_not_have(mixed):
    with pytest.raises(AssertionError, match=r"no test for perturbation 'background:plain' "
                                             r"\(audited: glasses:thick, lighting:dim\)"):
        assert_invariant(mixed, "background:plain")
    with pytest.raises(AssertionError, match="'honesty' is not a trait of this audit"):
        assert_no_shift(mixed, "glasses", traits="honesty")
    with pytest.raises(ValueError, match="margin must be a positive number"):
        assert_invariant(mixed, "lighting", traits="openness", margin=0)
    with pytest.raises(ValueError, match=r"unknown trait\(s\) \['honesty'\]"):
        assert_invariant(mixed, "lighting", margin={"honesty": 0.1})
    with pytest.raises(ValueError, match="needs the run's scores"):
        assert_invariant(_load(mixed), "lighting", margin=0.1)  # a bare result: no store to read
    with pytest.raises(TypeError, match="result must be an AuditResult"):
        assert_invariant(42, "lighting")


def test_margin_rejudges_against_the_whole_family(mixed):
    # A shift of about 0.08 is invariant within 0.2, and a tiny shift is not within 0.0005.
    assert_invariant(mixed, "glasses:thick", traits="openness", margin=0.2)
    with pytest.raises(AssertionError, match="not invariant") as info:
        assert_invariant(mixed, "lighting:dim", traits="neuroticism", margin=0.0005)
    assert "0.0005" in str(info.value)
    # Per-trait margins with a default; a trait the table does not name keeps the audit's margin.
    assert_invariant(mixed, "glasses", margin={"default": 0.05, "openness": 0.2})
    assert_invariant(mixed, "glasses", margin={"openness": 0.2})


def test_margin_matches_an_audit_run_at_that_margin(tmp_path):
    from auditkit.pytest_plugin.asserts import rejudge

    rng = np.random.default_rng(1)
    diffs = {(p, t): rng.normal(mu, 0.01, 40)
             for p, mu in (("a", 0.0), ("b", 0.03), ("c", 0.06)) for t in ("x", "y")}
    wide = _load(_saved(tmp_path / "wide", diffs, margin=0.1))
    narrow_path = _saved(tmp_path / "narrow", diffs, margin=0.04)
    narrow = _load(narrow_path)
    mine = rejudge(narrow, list(narrow.tests), 0.1, store=narrow_path.parent / "results.sqlite")
    for ours, theirs in zip(mine, wide.tests):
        assert (ours.verdict, ours.margin) == (theirs.verdict, theirs.margin)
        assert ours.equivalence_p_adjusted == pytest.approx(theirs.equivalence_p_adjusted, rel=1e-9)
        assert ours.stable_p_adjusted == pytest.approx(theirs.stable_p_adjusted, rel=1e-9)
        assert ours.share_moved == theirs.share_moved and ours.n_needed == theirs.n_needed
    assert {t.verdict for t in wide.tests} != {t.verdict for t in narrow.tests}  # the margin mattered
