"""The embedding cache: a restart re-encodes nothing, an edit re-encodes only what changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from knowledge.encoder import EmbeddingCache, mostly_chinese
from knowledge.entries import KnowledgeBase
from knowledge.matcher import build_matcher
from tests.knowledge.conftest import Counting, FirstBuild
from tests.knowledge.workshop_kb import workshop_kb


def _texts(kb: KnowledgeBase) -> set[str]:
    return {q for e in kb for _, q in e.all_questions()} | {
        t for e in kb for t in e.titles.values()
    }


def test_first_build_encodes_every_text_once(first_build: FirstBuild) -> None:
    expected = sorted(_texts(workshop_kb()))
    english = [t for t in expected if not mostly_chinese(t)]
    assert any(mostly_chinese(t) for t in expected)
    # e5 and USE read both languages; MiniLM, English only, is not asked to encode Chinese
    assert [sorted(texts) for texts in first_build.encoded] == [expected, expected, english]


def test_restart_encodes_nothing(
    counting: Counting, filled_cache_dir: Path, first_build: FirstBuild
) -> None:
    # A new cache object over the same folder is what a restarted process has.
    again = build_matcher(workshop_kb(), counting, EmbeddingCache(filled_cache_dir))
    assert [e.encoded for e in counting] == [[], [], []]
    question = "how much does an oil change cost"
    assert again.match(question) == first_build.matcher.match(question)


def test_editing_one_entry_reencodes_only_its_changed_texts(
    counting: Counting, filled_cache_dir: Path
) -> None:
    kb = workshop_kb()
    tyres = kb.get("tyres")
    assert tyres is not None
    new_en = (
        "Do you sell tyres and wheels?",
        *tyres.questions["en"][1:],
        "Can you balance my wheels?",
    )
    edited = dataclasses.replace(tyres, questions={**tyres.questions, "en": new_en})
    kb2 = KnowledgeBase(tuple(edited if e.id == "tyres" else e for e in kb))
    matcher = build_matcher(kb2, counting, EmbeddingCache(filled_cache_dir))
    for encoder in counting:
        assert sorted(encoder.encoded) == [
            "Can you balance my wheels?",
            "Do you sell tyres and wheels?",
        ]
    best = matcher.match("can you balance the wheels on my car").best
    assert best is not None
    assert best.entry_id == "tyres"


def test_cached_vectors_equal_fresh_ones(counting: Counting, tmp_path: Path) -> None:
    texts = ["Where are you located?", "你们几点开门？"]
    for encoder in counting:
        stored = EmbeddingCache(tmp_path).embed(encoder, texts)
        reloaded = EmbeddingCache(tmp_path).embed(encoder, texts)
        fresh = encoder.encode(texts)
        assert reloaded.dtype == np.float32
        np.testing.assert_allclose(reloaded, stored)
        np.testing.assert_allclose(reloaded, fresh, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(fresh, axis=1), 1.0, atol=1e-5)


def test_memory_only_cache_writes_nothing_and_reuses_vectors(
    counting: Counting, tmp_path: Path
) -> None:
    cache = EmbeddingCache()
    e5 = counting[0]
    cache.embed(e5, ["Do you take cash?", "Do you take cash?"])
    cache.embed(e5, ["Do you take cash?"])
    assert e5.encoded == ["Do you take cash?"]
    assert list(tmp_path.iterdir()) == []


def test_unreadable_shard_is_ignored(counting: Counting, tmp_path: Path) -> None:
    e5 = counting[0]
    EmbeddingCache(tmp_path).embed(e5, ["Can I pay by card?"])
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    (folder / "broken.npz").write_bytes(b"not a numpy file")
    e5.encoded.clear()
    EmbeddingCache(tmp_path).embed(e5, ["Can I pay by card?"])
    assert e5.encoded == []
