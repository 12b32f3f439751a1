"""A quality floor on a small fixed bilingual KB: the matcher must keep it."""

from __future__ import annotations

from knowledge.matcher import Decision, Matcher
from tests.knowledge.workshop_kb import HELD_OUT, UNRELATED


def test_held_out_paraphrases_land_on_the_right_entry(workshop_matcher: Matcher) -> None:
    results = [(workshop_matcher.match(q), expected) for q, expected in HELD_OUT]
    right = [m for m, expected in results if m.best is not None and m.best.entry_id == expected]
    assert len(right) >= 0.9 * len(HELD_OUT)
    answered = [m for m in right if m.decision is Decision.ANSWER]
    assert len(answered) >= 0.8 * len(HELD_OUT)


def test_chinese_and_english_questions_reach_the_same_entry(workshop_matcher: Matcher) -> None:
    for question in ("do you have a loan car", "有没有代步车"):
        best = workshop_matcher.match(question).best
        assert best is not None
        assert best.entry_id == "courtesy_car"


def test_unrelated_questions_are_not_answered(workshop_matcher: Matcher) -> None:
    decisions = [workshop_matcher.match(q).decision for q in UNRELATED]
    assert Decision.ANSWER not in decisions
    assert decisions.count(Decision.OUT_OF_SCOPE) >= len(UNRELATED) - 2


def test_scores_are_calibrated_and_ranked(workshop_matcher: Matcher) -> None:
    match = workshop_matcher.match("how much is an oil change", top_k=3)
    scores = [c.score for c in match.candidates]
    assert len(scores) == 3
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert len({c.entry_id for c in match.candidates}) == 3


def test_empty_question_is_out_of_scope(workshop_matcher: Matcher) -> None:
    match = workshop_matcher.match("   ")
    assert match.decision is Decision.OUT_OF_SCOPE
    assert match.candidates == ()
