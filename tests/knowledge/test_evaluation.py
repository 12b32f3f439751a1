"""knowledge.evaluation:build, as score_faq.py calls it."""

from __future__ import annotations

from pathlib import Path

from knowledge.evaluation import build


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
