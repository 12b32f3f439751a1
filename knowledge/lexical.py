"""Lexical similarity: TF-IDF over word and character n-grams, in plain numpy.

Words catch exact terms ("refund", "PIN"), character n-grams catch inflections and typos, and,
because Chinese is written without spaces, every Han character counts as a word, so Chinese gets
character unigrams and bigrams as words plus character n-grams. Vectors use sublinear term
frequency, smoothed idf and L2 normalisation; the index keeps the example matrix as postings
(feature -> rows), so scoring a query touches only the rows that share a feature with it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]

# A word is a run of letters/digits, or one Han/kana/hangul character.
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+", re.UNICODE)
CHAR_NGRAMS = (2, 3, 4)


def normalise(text: str) -> str:
    """Lower case, single spaces, full-width ASCII folded to half-width."""
    folded = "".join(
        chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in text.casefold()
    )
    return " ".join(folded.split())


def features(text: str, char_ngrams: Sequence[int] = CHAR_NGRAMS) -> list[str]:
    """The n-gram features of a text: word unigrams and bigrams, character n-grams."""
    norm = normalise(text)
    words = _WORD.findall(norm)
    out = [f"w {w}" for w in words]
    out += [f"b {a} {b}" for a, b in itertools.pairwise(words)]
    padded = f" {' '.join(words)} "
    for n in char_ngrams:
        out += [padded[i : i + n] for i in range(len(padded) - n + 1)]
    return out


@dataclass(frozen=True, slots=True)
class SparseRows:
    """Rows of L2-normalised TF-IDF vectors in CSR form."""

    indptr: npt.NDArray[np.int64]
    indices: IntArray
    values: FloatArray


class TfidfIndex:
    """TF-IDF vectors of a fixed list of texts, queried by cosine similarity."""

    def __init__(
        self,
        vocabulary: dict[str, int],
        idf: FloatArray,
        postings: tuple[npt.NDArray[np.int64], IntArray, FloatArray],
        n_rows: int,
        char_ngrams: Sequence[int] = CHAR_NGRAMS,
    ) -> None:
        self.vocabulary = vocabulary
        self.idf = idf
        self._post_ptr, self._post_rows, self._post_values = postings
        self.n_rows = n_rows
        self.char_ngrams = tuple(char_ngrams)

    @classmethod
    def build(
        cls, texts: Sequence[str], char_ngrams: Sequence[int] = CHAR_NGRAMS, max_df: float = 1.0
    ) -> TfidfIndex:
        """Index `texts`; features found in more than `max_df` of them are ignored."""
        grams = [features(t, char_ngrams) for t in texts]
        vocabulary: dict[str, int] = {}
        for row in grams:
            for g in row:
                vocabulary.setdefault(g, len(vocabulary))
        n_rows = len(texts)
        ids_per_row = [
            np.fromiter((vocabulary[g] for g in row), np.int32, len(row)) for row in grams
        ]
        doc_freq = np.zeros(len(vocabulary), dtype=np.float64)
        for ids in ids_per_row:
            doc_freq[np.unique(ids)] += 1.0
        idf = (np.log((1.0 + n_rows) / (1.0 + doc_freq)) + 1.0).astype(np.float32)
        # Very common features carry little and cost the most at query time.
        idf[doc_freq > max_df * max(n_rows, 1)] = 0.0
        rows = _vectorise(ids_per_row, idf)
        # Transpose into postings: for each feature, the rows containing it and their weights.
        row_of = np.repeat(np.arange(n_rows, dtype=np.int32), np.diff(rows.indptr))
        order = np.argsort(rows.indices, kind="stable")
        counts = np.bincount(rows.indices, minlength=len(vocabulary))
        ptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        postings = (ptr, row_of[order], rows.values[order])
        return cls(vocabulary, idf, postings, n_rows, char_ngrams)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "tfidf_vocabulary": np.asarray(list(self.vocabulary), dtype=np.str_),
            "tfidf_idf": self.idf,
            "tfidf_ptr": self._post_ptr,
            "tfidf_rows": self._post_rows,
            "tfidf_values": self._post_values,
            "tfidf_shape": np.asarray([self.n_rows, *self.char_ngrams], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> TfidfIndex:
        words = arrays["tfidf_vocabulary"].tolist()
        shape = [int(v) for v in arrays["tfidf_shape"]]
        postings = (arrays["tfidf_ptr"], arrays["tfidf_rows"], arrays["tfidf_values"])
        vocabulary = dict(zip(words, range(len(words)), strict=True))
        return cls(vocabulary, arrays["tfidf_idf"], postings, shape[0], shape[1:])

    def query_vector(self, text: str) -> tuple[IntArray, FloatArray]:
        """Feature ids and weights of `text` (features unseen in the index are dropped)."""
        ids = [self.vocabulary[g] for g in features(text, self.char_ngrams) if g in self.vocabulary]
        if not ids:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        rows = _vectorise([np.asarray(ids, dtype=np.int32)], self.idf)
        return rows.indices, rows.values

    def similarities(self, text: str) -> FloatArray:
        """Cosine similarity of `text` to every indexed row."""
        ids, weights = self.query_vector(text)
        if ids.size == 0:
            return np.zeros(self.n_rows, dtype=np.float32)
        starts, ends = self._post_ptr[ids], self._post_ptr[ids + 1]
        lengths = ends - starts
        picks = np.repeat(ends - np.cumsum(lengths), lengths) + np.arange(int(lengths.sum()))
        scores = np.bincount(
            self._post_rows[picks],
            weights=self._post_values[picks] * np.repeat(weights, lengths),
            minlength=self.n_rows,
        )
        return scores.astype(np.float32)


def _vectorise(ids_per_row: Iterable[IntArray], idf: FloatArray) -> SparseRows:
    indptr = [0]
    all_ids: list[IntArray] = []
    all_values: list[FloatArray] = []
    for ids in ids_per_row:
        unique, counts = np.unique(ids, return_counts=True)
        weights = (1.0 + np.log(counts)).astype(np.float32) * idf[unique]
        kept = weights > 0
        unique, weights = unique[kept], weights[kept]
        norm = float(np.sqrt(np.dot(weights, weights))) or 1.0
        all_ids.append(unique.astype(np.int32))
        all_values.append(weights / np.float32(norm))
        indptr.append(indptr[-1] + len(unique))
    return SparseRows(
        np.asarray(indptr, dtype=np.int64),
        np.concatenate(all_ids) if all_ids else np.zeros(0, np.int32),
        np.concatenate(all_values) if all_values else np.zeros(0, np.float32),
    )
