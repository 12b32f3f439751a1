"""Complaints recognised by meaning: a logistic regression over e5 sentence embeddings.

The lexicon in `dialogs.dissatisfaction` finds complaints by their words, and so misses the
many that only state a failure ("the new battery died after 3 days", "保洁把药扔了").
`ComplaintClassifier` is trained on the labelled examples shipped in
`knowledge/samples/complaint_examples.csv` (English and Chinese; complaint, human or none) and
says how likely a message needs a person. Its threshold is the lowest score at which
cross-validation on those examples keeps precision at `TARGET_PRECISION`, so editing the
examples re-tunes it. The examples are not the labelled sets in tests/dialogs/data: those
measure the classifier on messages it never saw.

Chosen by 5-fold cross-validation on the examples (recall at precision 0.9): a logistic
regression on the raw embeddings with a light L2 penalty beat nearest-centroid and k-nearest
neighbours (AUC 0.97 against 0.92 and 0.87-0.94). Training is a few Newton steps in numpy,
well under a second; encoding the examples takes longer, so pass an `EmbeddingCache` with a
directory to do it once.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from knowledge.encoder import E5SmallEncoder, EmbeddingCache, Encoder
from knowledge.samples import default_out_of_scope

Label = Literal["complaint", "human", "none"]
Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

EXAMPLES: Final = "complaint_examples.csv"
TARGET_PRECISION: Final = 0.9
L2: Final = 0.01  # on the weights, not the bias; chosen by cross-validation (0.001-0.03 alike)
FOLDS: Final = 5
REPEATS: Final = 5  # shuffles of the folds; the threshold is the median of theirs
_NEWTON_STEPS: Final = 50
_LABELS: Final[dict[str, Label]] = {"complaint": "complaint", "human": "human", "none": "none"}


class ExamplesError(ValueError):
    """The complaint examples file is malformed: fix the named row."""


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message: does it need a person, and why."""

    text: str
    label: Label

    @property
    def needs_person(self) -> bool:
        return self.label != "none"


def parse_examples(data: str, source: str = EXAMPLES) -> tuple[Example, ...]:
    """Examples from CSV text with the columns `text` and `label`."""
    examples: list[Example] = []
    for number, row in enumerate(csv.DictReader(io.StringIO(data)), start=2):
        text = (row.get("text") or "").strip()
        label = _LABELS.get((row.get("label") or "").strip())
        if not text or label is None:
            raise ExamplesError(
                f"{source}, line {number}: need a text and a label ({', '.join(_LABELS)})"
            )
        examples.append(Example(text, label))
    return tuple(examples)


def default_examples() -> tuple[Example, ...]:
    """The labelled complaint examples plus the shipped off-topic questions as "none"."""
    chit_chat = [text for texts in default_out_of_scope().values() for text in texts]
    return complaint_examples() + tuple(Example(text, "none") for text in chit_chat)


def complaint_examples() -> tuple[Example, ...]:
    """The examples shipped in `knowledge.samples`."""
    data = resources.files("knowledge.samples").joinpath(EXAMPLES).read_text(encoding="utf-8")
    return parse_examples(data, f"knowledge/samples/{EXAMPLES}")


@dataclass(frozen=True, slots=True)
class LogisticModel:
    """Weights of a binary logistic regression."""

    weights: Vector
    bias: float

    def probabilities(self, x: Matrix) -> Vector:
        out: Vector = 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))
        return out


def fit_logistic(x: Matrix, y: Mask, l2: float = L2) -> LogisticModel:
    """L2-penalised logistic regression by Newton's method (deterministic, a few steps)."""
    n, dim = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    target = y.astype(np.float64)
    penalty = np.eye(dim + 1) * l2
    penalty[dim, dim] = 0.0
    w = np.zeros(dim + 1)
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - target) + penalty @ w
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return LogisticModel(w[:dim].copy(), float(w[dim]))


def _folds(strata: Sequence[str], folds: int, seed: int) -> npt.NDArray[np.int64]:
    """A fold number per example, each stratum (label and language) spread over the folds."""
    rng = np.random.default_rng(seed)
    keys = np.asarray(strata)
    fold = np.zeros(len(keys), dtype=np.int64)
    for stratum in sorted(set(strata)):
        members = np.flatnonzero(keys == stratum)
        rng.shuffle(members)
        fold[members] = np.arange(len(members)) % folds
    return fold


def out_of_fold(x: Matrix, y: Mask, strata: Sequence[str], seed: int, l2: float = L2) -> Vector:
    """Each example's probability from a model trained on the other folds."""
    fold = _folds(strata, FOLDS, seed)
    scores = np.zeros(len(y))
    for k in range(FOLDS):
        held = fold == k
        scores[held] = fit_logistic(x[~held], y[~held], l2).probabilities(x[held])
    return scores


def precision_threshold(scores: Vector, y: Mask, target: float = TARGET_PRECISION) -> float:
    """The lowest score whose predictions at or above it are at least `target` precise."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(y[order])
    precision = hits / np.arange(1, len(order) + 1)
    good = np.flatnonzero(precision >= target)
    if len(good) == 0:
        return 1.0
    return float(scores[order][good.max()])


def _stratum(example: Example) -> str:
    chinese = any("\u4e00" <= ch <= "\u9fff" for ch in example.text)
    return f"{example.label}/{'zh' if chinese else 'en'}"


class ComplaintClassifier:
    """How likely a message needs a person (a complaint or a request for one), by meaning.

    Satisfies `dialogs.dissatisfaction.ComplaintModel`. `probability` encodes the text with the
    e5 model, so it costs a few milliseconds; it is safe to call from several threads.
    """

    def __init__(self, encoder: Encoder, model: LogisticModel, threshold: float) -> None:
        self._encoder = encoder
        self._model = model
        self._threshold = threshold
        self._lock = threading.Lock()  # one encode at a time on the shared model

    @property
    def threshold(self) -> float:
        """Probabilities at or above this open a ticket (precision ~0.9 in cross-validation)."""
        return self._threshold

    @property
    def name(self) -> str:
        return f"logistic/{self._encoder.name}"

    @classmethod
    def build(
        cls,
        examples: Sequence[Example] | None = None,
        encoder: Encoder | None = None,
        cache: EmbeddingCache | None = None,
    ) -> ComplaintClassifier:
        """Train on `examples` (default: the shipped ones) and tune the threshold.

        The default training set includes the shipped off-topic questions as "none": without
        them chit-chat ("tell me a joke") looked more like a complaint than like a question.
        """
        examples = tuple(examples) if examples is not None else default_examples()
        encoder = encoder if encoder is not None else E5SmallEncoder()
        cache = cache if cache is not None else EmbeddingCache()
        x = cache.embed(encoder, [e.text for e in examples]).astype(np.float64)
        y = np.array([e.needs_person for e in examples], dtype=np.bool_)
        strata = [_stratum(e) for e in examples]
        thresholds = [
            precision_threshold(out_of_fold(x, y, strata, seed), y) for seed in range(REPEATS)
        ]
        return cls(encoder, fit_logistic(x, y), float(np.median(thresholds)))

    def probabilities(self, texts: Sequence[str]) -> Vector:
        """`probability` of each text, encoded in one batch."""
        if not texts:
            return np.zeros(0)
        with self._lock:
            vectors = self._encoder.encode(texts)
        return self._model.probabilities(vectors.astype(np.float64))

    def probability(self, text: str) -> float:
        """How likely `text` needs a person, 0..1; 0 for an empty message."""
        if not text.strip():
            return 0.0
        return float(self.probabilities([text])[0])
