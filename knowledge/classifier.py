"""A small softmax classifier over sentence embeddings, trained with numpy.

Two shapes share one trainer: a linear softmax regression (`hidden=0`) and a one-hidden-layer
ReLU network. Training is mini-batch Adam with a fixed seed, so the same examples always give
the same weights (and the weights can be cached by content). The number of epochs follows the
number of gradient steps wanted, so a 5-example-per-entry KB and a 100-example one are both
trained to a similar point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def log_softmax(z: FloatArray) -> FloatArray:
    """Row-wise log-softmax."""
    shifted = z - z.max(axis=-1, keepdims=True)
    out: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


def softmax(z: FloatArray) -> FloatArray:
    """Row-wise softmax."""
    out: FloatArray = np.exp(log_softmax(z))
    return out


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """How a classifier is trained; part of the cache key of its weights."""

    hidden: int = 0
    steps: int = 1200
    min_epochs: int = 10
    max_epochs: int = 400
    batch: int = 128
    learning_rate: float = 0.005
    weight_decay: float = 1e-4
    seed: int = 0

    def epochs(self, n_examples: int) -> int:
        steps_per_epoch = max(1, math.ceil(n_examples / self.batch))
        return min(self.max_epochs, max(self.min_epochs, math.ceil(self.steps / steps_per_epoch)))


@dataclass(frozen=True, slots=True)
class SoftmaxClassifier:
    """Weights of a trained classifier: `hidden_*` are empty for the linear one."""

    weights: FloatArray
    bias: FloatArray
    hidden_weights: FloatArray
    hidden_bias: FloatArray

    def logits(self, x: FloatArray) -> FloatArray:
        """Class scores (before softmax) for the rows of `x`."""
        if self.hidden_weights.size:
            x = np.maximum(x @ self.hidden_weights + self.hidden_bias, np.float32(0.0))
        out: FloatArray = x @ self.weights + self.bias
        return out

    def to_arrays(self, prefix: str) -> dict[str, FloatArray]:
        return {
            f"{prefix}weights": self.weights,
            f"{prefix}bias": self.bias,
            f"{prefix}hidden_weights": self.hidden_weights,
            f"{prefix}hidden_bias": self.hidden_bias,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, FloatArray], prefix: str) -> SoftmaxClassifier:
        return cls(
            arrays[f"{prefix}weights"],
            arrays[f"{prefix}bias"],
            arrays[f"{prefix}hidden_weights"],
            arrays[f"{prefix}hidden_bias"],
        )


class _Adam:
    def __init__(self, params: list[FloatArray], learning_rate: float) -> None:
        self.params = params
        self.rate = learning_rate
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[FloatArray]) -> None:
        self.t += 1
        fix1, fix2 = 1.0 - 0.9**self.t, 1.0 - 0.999**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= (self.rate / fix1) * m / (np.sqrt(v / fix2) + 1e-8)


def train_softmax(
    x: FloatArray, y: IntArray, n_classes: int, plan: TrainingPlan
) -> SoftmaxClassifier:
    """Fit a classifier of `plan.hidden` hidden units (0 = linear) on rows `x`, labels `y`."""
    rng = np.random.default_rng(plan.seed)
    n, dim = x.shape
    targets = np.zeros((n, n_classes), dtype=np.float32)
    targets[np.arange(n), y] = 1.0
    if plan.hidden:
        w1 = (rng.standard_normal((dim, plan.hidden)) * math.sqrt(2.0 / dim)).astype(np.float32)
        b1 = np.zeros(plan.hidden, dtype=np.float32)
        scale2 = math.sqrt(1.0 / plan.hidden)
        w2 = (rng.standard_normal((plan.hidden, n_classes)) * scale2).astype(np.float32)
        params = [w1, b1, w2, np.zeros(n_classes, dtype=np.float32)]
    else:
        params = [np.zeros((dim, n_classes), np.float32), np.zeros(n_classes, np.float32)]
    adam = _Adam(params, plan.learning_rate)
    decay = np.float32(plan.weight_decay)
    for _ in range(plan.epochs(n)):
        order = rng.permutation(n)
        for start in range(0, n, plan.batch):
            rows = order[start : start + plan.batch]
            xb, tb = x[rows], targets[rows]
            if plan.hidden:
                w1, b1, w2, b2 = params
                h = np.maximum(xb @ w1 + b1, np.float32(0.0))
                g = (softmax(h @ w2 + b2) - tb) / np.float32(len(rows))
                gh = (g @ w2.T) * (h > 0)
                adam.step([xb.T @ gh + decay * w1, gh.sum(0), h.T @ g + decay * w2, g.sum(0)])
            else:
                w, b = params
                g = (softmax(xb @ w + b) - tb) / np.float32(len(rows))
                adam.step([xb.T @ g + decay * w, g.sum(0)])
    if plan.hidden:
        return SoftmaxClassifier(params[2], params[3], params[0], params[1])
    empty = np.zeros((0,), dtype=np.float32)
    return SoftmaxClassifier(params[0], params[1], empty, empty)
