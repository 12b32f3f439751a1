"""knowledge.evaluation: the query-file reader, the scores, and `build` as score_faq.py calls it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from knowledge.evaluation import Prediction, QueryFileError, build, parse_queries, score
from knowledge.matcher import Decision


def test_build_predicts_ids_scores_and_rejections(shared_cache_dir: Path) -> None:
    doc = {
        "format": "faq-kb/1",
        "language": "en",
        "entries": [
            {
                "id": "hours",
                "title": "opening hours",
                "answer": "9-18",
                "examples": [
                    "when are you open",
                    "what are your opening hours",
                    "are you open on sunday",
                ],
            },
            {
                "id": "price",
                "title": "oil change price",
                "answer": "49 EUR",
                "examples": [
                    "how much is an oil change",
                    "price of an oil service",
                    "oil change cost",
                ],
            },
            {
                "id": "address",
                "title": "address",
                "answer": "Main St 1",
                "examples": ["where are you", "what is your address", "how do i find the garage"],
            },
        ],
    }
    predictor = build(doc, cache_dir=str(shared_cache_dir))
    hit = predictor.predict("what time do you open on saturday")
    assert hit["predicted"] == "hours"
    assert hit["top1"] == "hours"
    assert 0.0 <= hit["score"] <= 1.0
    miss = predictor.predict("who painted the mona lisa")
    assert miss["top1"] in {"hours", "price", "address"}


QUERY_FILE = """\
{"format": "faq-queries/1", "language": "en",
 "queries": [
  {"qid": "q1", "text": "when are you open", "expected": "hours"},
  {"qid": "q2", "text": "oil change price", "expected": "price"},
  {"qid": "q3",
   "text": "where are you", "expected": "address"},
  {"qid": "q4", "text": "who painted the mona lisa", "expected": null},
  {"qid": "q5", "text": "capital of peru", "expected": null}
 ]}
"""


def test_parse_queries_keeps_order_language_and_lines() -> None:
    parsed = parse_queries(QUERY_FILE, "q.json", {"hours", "price", "address"})
    assert parsed.language == "en"
    assert [q.qid for q in parsed.queries] == ["q1", "q2", "q3", "q4", "q5"]
    assert [q.line for q in parsed.queries] == [3, 4, 5, 7, 8]
    assert parsed.queries[3].expected is None


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ('{"format": "faq-queries/1",\n "queries": [\n', "q.json:3", "invalid JSON"),
        ('{"format": "faq-kb/1", "queries": []}', "q.json:1", '"format" must be'),
        ('{"format": "faq-queries/1",\n "queries": []}', "q.json:2", "non-empty list"),
        (QUERY_FILE.replace('"text": "oil change price", ', ""), "q.json:4", '"text" must be'),
        (QUERY_FILE.replace(', "expected": null}', "}", 1), "q.json:7", '"expected" is missing'),
        (QUERY_FILE.replace('"price"}', '"prize"}'), "q.json:4", "'prize' is not the id"),
        (QUERY_FILE.replace('"q2"', '"q1"'), "q.json:4", "two queries have the qid 'q1'"),
    ],
)
def test_a_bad_query_file_names_the_line_and_the_reason(text: str, where: str, reason: str) -> None:
    with pytest.raises(QueryFileError) as raised:
        parse_queries(text, "q.json", {"hours", "price", "address"})
    assert str(raised.value).startswith(where + ":")
    assert reason in str(raised.value)


def _predictions() -> list[Prediction]:
    p = Prediction
    return [
        p("hours", "hours", 0.9, Decision.ANSWER),
        p(None, "price", 0.1, Decision.OUT_OF_SCOPE),  # rejected, right entry on top
        p("hours", "hours", 0.5, Decision.DID_YOU_MEAN),  # wrong entry
        p(None, "hours", 0.1, Decision.OUT_OF_SCOPE),
        p("price", "price", 0.3, Decision.DID_YOU_MEAN),
    ]


def test_score_counts_like_the_shared_scorer() -> None:
    queries = parse_queries(QUERY_FILE, "q.json").queries
    s = score(queries, _predictions(), [5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n_in_scope, s.n_out_of_scope) == (3, 2)
    assert s.in_scope_accuracy == pytest.approx(1 / 3)
    assert s.closed_set_accuracy == pytest.approx(2 / 3)
    assert s.oos_recall == pytest.approx(1 / 2)
    assert s.oos_precision == pytest.approx(1 / 2)
    assert (s.ms_p50, s.ms_p95) == (3.0, 5.0)
    assert s.decisions == {Decision.ANSWER: 1, Decision.DID_YOU_MEAN: 2, Decision.OUT_OF_SCOPE: 2}


SCORE_FAQ = Path(__file__).resolve().parents[3] / "shared" / "eval" / "score_faq.py"


@pytest.mark.skipif(not SCORE_FAQ.exists(), reason="needs ../shared/eval/score_faq.py")
def test_score_agrees_with_score_faq_py() -> None:
    spec = importlib.util.spec_from_file_location("score_faq", SCORE_FAQ)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    queries = parse_queries(QUERY_FILE, "q.json").queries
    ms = [5.0, 1.0, 3.0, 2.0, 4.0]
    theirs = module.compute_metrics(
        [{"qid": q.qid, "expected": q.expected} for q in queries],
        {
            q.qid: {"predicted": p.predicted, "top1": p.top1, "ms": t}
            for q, p, t in zip(queries, _predictions(), ms, strict=True)
        },
    )
    ours = score(queries, _predictions(), ms)
    for name in ("in_scope_accuracy", "closed_set_accuracy", "oos_recall", "oos_precision"):
        assert getattr(ours, name) == pytest.approx(theirs[name]), name
    assert (ours.ms_p50, ours.ms_p95) == (theirs["ms_p50"], theirs["ms_p95"])
