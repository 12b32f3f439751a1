"""The product matcher as a callable for ../shared/eval/score_faq.py.

    python ../shared/eval/score_faq.py --kb KB.json --queries Q.json \\
        --callable knowledge.evaluation:build [--callable-kwargs '{"cache_dir": "/tmp/faq"}']

`build(kb_doc)` parses the `faq-kb/1` document with the product loader and builds the product
matcher with its default configuration; `predict(text)` returns the best entry id, or None when
the matcher decides the question is out of scope, with the calibrated confidence and the best
entry before rejection (for closed-set accuracy). A "did you mean" decision counts as predicting
its first suggestion. Keyword arguments: `cache_dir` (embedding cache folder; default: memory
only, which means every run encodes the whole KB) and `use_titles` (default: as in the bot).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge import tuning
from knowledge.encoder import EmbeddingCache
from knowledge.entries import parse_faq_kb
from knowledge.matcher import Decision, Matcher, build_matcher


class Predictor:
    """What score_faq.py calls once per query."""

    def __init__(self, matcher: Matcher, language: str | None) -> None:
        self.matcher = matcher
        self.language = language

    def predict(self, text: str) -> dict[str, Any]:
        match = self.matcher.match(text, self.language, top_k=3)
        best = match.best
        if best is None:
            return {"predicted": None, "score": 0.0, "top1": None}
        answered = match.decision is not Decision.OUT_OF_SCOPE
        return {
            "predicted": best.entry_id if answered else None,
            "score": best.score,
            "top1": best.entry_id,
        }


def build(
    kb_doc: dict[str, Any], cache_dir: str | None = None, use_titles: bool = tuning.USE_TITLES
) -> Predictor:
    """score_faq.py's entry point: a predictor for the KB document `kb_doc`."""
    kb = parse_faq_kb(kb_doc, source=str(kb_doc.get("dataset", "<faq-kb>")))
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else None)
    language = kb_doc.get("language")
    return Predictor(
        build_matcher(kb, cache=cache, use_titles=use_titles),
        language if isinstance(language, str) else None,
    )
