"""Audit tests in Python, for anything a suite file cannot say."""

from auditkit.pytest_plugin import assert_invariant, assert_no_shift


def test_the_rater_scores_the_big_five(auditkit_rater):
    assert auditkit_rater.trait_names == ("openness", "conscientiousness", "extraversion",
                                          "agreeableness", "neuroticism")


def test_glasses_move_no_trait(audit_result):
    assert_invariant(audit_result, "glasses")


def test_neuroticism_is_stable_within_a_tighter_margin(audit_result):
    assert_invariant(audit_result, ["lighting", "quality"], traits="neuroticism", margin=0.02)


def test_compression_does_not_shift_scores(audit_result):
    assert_no_shift(audit_result, "quality:jpeg")
