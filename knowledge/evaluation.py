"""Measuring the matcher against labelled questions: the query file, the scores, the scorer hook.

A query file is the `faq-queries/1` JSON of ../shared/eval: questions, each with the id of the
entry that should answer it or null when the knowledge base should not answer it (out of scope).
`parse_queries` reads one and reports a bad file with the file, the line and the reason;
`predict` is how the matcher's decision counts as a prediction, and `score` computes the same
figures as ../shared/eval/score_faq.py (in-scope and closed-set accuracy, out-of-scope recall and
precision, latency percentiles). `concierge kb eval` runs these; the clock stays with the caller.

`build(kb_doc)` is the entry point for the shared scorer:

    python ../shared/eval/score_faq.py --kb KB.json --queries Q.json \\
        --callable knowledge.evaluation:build [--callable-kwargs '{"cache_dir": "/tmp/faq"}']

It parses the `faq-kb/1` document with the product loader and builds the product matcher with
its default configuration. Keyword arguments: `cache_dir` (embedding cache folder; default:
memory only, which means every run encodes the whole KB), `use_titles` (default: as in the
bot), `out_of_scope`: a `faq-queries/1` file whose out-of-scope questions (expected null)
the matcher learns not to answer, e.g. the datasets' `oos_train.json` (default: none), and
`default_out_of_scope`: when the KB brings no out-of-scope examples (neither its own
"out_of_scope" field nor that file), build the matcher as the bot does
(`knowledge.out_of_scope.build_bot_matcher`: the shipped default chit-chat set in the KB's
languages; default: true, as in the bot; false scores the KB alone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge import tuning
from knowledge.encoder import EmbeddingCache
from knowledge.entries import KnowledgeFileError, Language, parse_faq_kb
from knowledge.matcher import Decision, Matcher, build_matcher
from knowledge.out_of_scope import build_bot_matcher

FAQ_QUERIES_FORMAT = "faq-queries/1"


class QueryFileError(KnowledgeFileError):
    """A query file cannot be used: says which file, where, and why."""


@dataclass(frozen=True, slots=True)
class EvalQuery:
    """A question and the entry that should answer it (None: it should not be answered)."""

    qid: str
    text: str
    expected: str | None
    line: int


@dataclass(frozen=True, slots=True)
class QuerySet:
    language: Language | None
    queries: tuple[EvalQuery, ...]


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the matcher did with one question."""

    predicted: str | None  # the entry answered (or offered first); None: out of scope
    top1: str | None  # the best entry before any rejection
    confidence: float
    decision: Decision


@dataclass(frozen=True, slots=True)
class Scores:
    """The figures of score_faq.py; None where a figure is undefined (e.g. no OOS queries)."""

    n_in_scope: int
    n_out_of_scope: int
    in_scope_accuracy: float | None
    closed_set_accuracy: float | None
    oos_recall: float | None
    oos_precision: float | None
    ms_p50: float | None
    ms_p95: float | None
    decisions: Mapping[Decision, int]


def parse_queries(text: str, source: str, entry_ids: Collection[str] | None = None) -> QuerySet:
    """The queries of a `faq-queries/1` document; with `entry_ids`, every expected id is checked."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise QueryFileError(source, f"invalid JSON: {err.msg}", err.lineno) from None
    if not isinstance(doc, dict):
        raise QueryFileError(source, "the document is not a JSON object", 1)
    if doc.get("format") != FAQ_QUERIES_FORMAT:
        where = _key_line(text, "format")
        raise QueryFileError(source, f'"format" must be {FAQ_QUERIES_FORMAT!r}', where)
    raw = doc.get("queries")
    if not isinstance(raw, list) or not raw:
        raise QueryFileError(
            source, '"queries" must be a non-empty list', _key_line(text, "queries")
        )
    lines = _element_lines(text)
    queries = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        line = lines[i] if i < len(lines) else 1
        query = _query(item, i, line, source, entry_ids)
        if query.qid in seen:
            reason = f"two queries have the qid {query.qid!r} (lines {seen[query.qid]} and {line})"
            raise QueryFileError(source, reason, line)
        seen[query.qid] = line
        queries.append(query)
    language = doc.get("language")
    return QuerySet(language if isinstance(language, str) else None, tuple(queries))


def _query(
    item: object, i: int, line: int, source: str, entry_ids: Collection[str] | None
) -> EvalQuery:
    if not isinstance(item, dict):
        raise QueryFileError(source, f"queries[{i}] must be an object with text and expected", line)
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise QueryFileError(source, f'queries[{i}]: "text" must be a non-empty string', line)
    if "expected" not in item:
        reason = f'queries[{i}]: "expected" is missing (an entry id, or null for out of scope)'
        raise QueryFileError(source, reason, line)
    expected = item["expected"]
    if expected is not None and not isinstance(expected, str):
        reason = f'queries[{i}]: "expected" must be an entry id or null'
        raise QueryFileError(source, reason, line)
    if expected is not None and entry_ids is not None and expected not in entry_ids:
        reason = f"queries[{i}]: expected {expected!r} is not the id of any entry in the KB"
        raise QueryFileError(source, reason, line)
    qid = item.get("qid", f"q{i}")
    if not isinstance(qid, str | int):
        raise QueryFileError(source, f'queries[{i}]: "qid" must be a string', line)
    return EvalQuery(str(qid), text, expected, line)


def _key_line(text: str, key: str) -> int:
    found = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def _element_lines(text: str) -> list[int]:
    """The line on which each element of the "queries" list starts (json has no positions)."""
    found = re.search(r'"queries"\s*:\s*\[', text)
    if found is None:
        return []
    decoder = json.JSONDecoder()
    lines: list[int] = []
    pos, line, counted = found.end(), 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        try:
            _, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return lines


def predict(matcher: Matcher, text: str, language: Language | None = None) -> Prediction:
    """The matcher's answer as a prediction; "did you mean" counts as its first suggestion."""
    match = matcher.match(text, language, top_k=3)
    best = match.best
    if best is None:
        return Prediction(None, None, 0.0, match.decision)
    answered = match.decision is not Decision.OUT_OF_SCOPE
    return Prediction(
        best.entry_id if answered else None, best.entry_id, best.score, match.decision
    )


def score(
    queries: Sequence[EvalQuery], predictions: Sequence[Prediction], ms: Sequence[float] = ()
) -> Scores:
    """score_faq.py's figures for `predictions` (one per query, in order) and latencies `ms`."""
    if len(predictions) != len(queries):
        raise ValueError("score needs exactly one prediction per query")
    pairs = list(zip(queries, predictions, strict=True))
    in_scope = [(q, p) for q, p in pairs if q.expected is not None]
    oos = [p for q, p in pairs if q.expected is None]
    rejected = sum(p.predicted is None for p in predictions)
    oos_rejected = sum(p.predicted is None for p in oos)
    timings = sorted(ms)
    decisions = dict.fromkeys(Decision, 0)
    for p in predictions:
        decisions[p.decision] += 1
    return Scores(
        n_in_scope=len(in_scope),
        n_out_of_scope=len(oos),
        in_scope_accuracy=_ratio(
            sum(p.predicted == q.expected for q, p in in_scope), len(in_scope)
        ),
        closed_set_accuracy=_ratio(sum(p.top1 == q.expected for q, p in in_scope), len(in_scope)),
        oos_recall=_ratio(oos_rejected, len(oos)),
        oos_precision=_ratio(oos_rejected, rejected) if oos else None,
        ms_p50=timings[len(timings) // 2] if timings else None,
        ms_p95=timings[min(len(timings) - 1, int(0.95 * len(timings)))] if timings else None,
        decisions=decisions,
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class Predictor:
    """What score_faq.py calls once per query."""

    def __init__(self, matcher: Matcher, language: str | None) -> None:
        self.matcher = matcher
        self.language = language

    def predict(self, text: str) -> dict[str, Any]:
        p = predict(self.matcher, text, self.language)
        return {"predicted": p.predicted, "score": p.confidence, "top1": p.top1}


def build(
    kb_doc: dict[str, Any],
    cache_dir: str | None = None,
    use_titles: bool = tuning.USE_TITLES,
    out_of_scope: str | None = None,
    default_out_of_scope: bool = tuning.USE_DEFAULT_OUT_OF_SCOPE,
) -> Predictor:
    """score_faq.py's entry point: a predictor for the KB document `kb_doc`.

    By default the matcher is built exactly as the bot builds it, shipped off-topic examples
    included; `default_out_of_scope=False` scores the matcher without any (the KB alone).
    """
    kb = parse_faq_kb(kb_doc, source=str(kb_doc.get("dataset", "<faq-kb>")))
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else None)
    language = kb_doc.get("language")
    rejects = [question for _, question in kb.out_of_scope_questions()]
    if out_of_scope:
        path = Path(out_of_scope)
        examples = parse_queries(path.read_text(encoding="utf-8"), str(path))
        rejects += [q.text for q in examples.queries if q.expected is None]
    if rejects or not default_out_of_scope:
        matcher = build_matcher(kb, cache=cache, use_titles=use_titles, out_of_scope=rejects)
    else:
        matcher, _ = build_bot_matcher(kb, cache=cache, use_titles=use_titles, use_default=True)
    return Predictor(matcher, language if isinstance(language, str) else None)
