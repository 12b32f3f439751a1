"""FAQ matcher benchmark on the public dev sets in ../shared/eval (not a test).

    .venv/bin/python bench/faq.py [--eval-dir ../shared/eval] [--cache-dir DIR] [--no-titles]
                                  [--only clinc150/full] [--skip-cold]
                                  [--oos-train | --default-oos]
    .venv/bin/python bench/faq.py tune --cache-dir DIR [--default-oos]  # refit tuning.py
    .venv/bin/python bench/faq.py languages [--cache-dir DIR]  # one-language KBs, other language

For each KB variant (CLINC150, BANKING77, SMP2017 x 5-shot, full) against its dev.json it prints
in-scope accuracy, closed-set accuracy, OOS recall and precision (metrics computed by
score_faq.py itself), ms/query p50/p95 (one query at a time, encoding included) and the KB build
time cold (fresh, empty cache folder: every question encoded, classifiers trained) and warm
(a new process-level cache over the folder the cold build filled, as after a restart).
With --oos-train, a dataset's oos_train.json (CLINC150, SMP2017: out-of-scope training
questions) is given to the matcher as out-of-scope examples; with --default-oos, our shipped
chit-chat set (knowledge/samples/out_of_scope.yaml), as the bot builds a KB without examples of
its own.

`tune` computes every view's scores for all dev queries once, then prints the fusion weights,
calibrator and thresholds that knowledge/tuning.py should hold (the dev sets are the only data
it looks at). Query embeddings come from the cache there, so run a plain benchmark with the
same --cache-dir first.

`languages` asks the sample car-workshop KB, cut down to one language's questions and built as
the bot builds it, the other language's questions (148 each way; the answers are the entries'),
and prints how many land on the right entry, are answered right and are rejected. A third
variant is English with two entries that keep their Chinese questions, asked the other entries'
Chinese ones. Then it prints how many of the eval's out-of-scope dev questions (SMP2017 `chat`
in Chinese, CLINC150 in English) each variant rejects.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge import tuning
from knowledge.encoder import EmbeddingCache, Encoder, FloatArray
from knowledge.entries import KnowledgeBase, parse_faq_kb
from knowledge.evaluation import Predictor
from knowledge.matcher import Decision, Matcher, build_matcher, default_encoders
from knowledge.out_of_scope import build_bot_matcher
from knowledge.samples import car_workshop

VARIANTS = [(d, v) for d in ("clinc150", "banking77", "smp2017") for v in ("5shot", "full")]
DEFAULT_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


class CachedEncoder:
    """Routes query encoding through the cache too (tune only: dev queries encode once)."""

    def __init__(self, inner: Encoder, cache: EmbeddingCache) -> None:
        self.inner, self.cache = inner, cache

    @property
    def name(self) -> str:
        return self.inner.name

    def encode(self, texts: Any) -> FloatArray:
        return self.cache.embed(self.inner, list(texts))

    def reads(self, text: str) -> bool:
        return self.inner.reads(text)


def scorer(eval_dir: Path) -> Any:
    spec = importlib.util.spec_from_file_location("score_faq", eval_dir / "score_faq.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(eval_dir: Path, dataset: str, variant: str) -> tuple[dict[str, Any], list[Any]]:
    kb = json.loads((eval_dir / dataset / f"kb_{variant}.json").read_text(encoding="utf-8"))
    dev = json.loads((eval_dir / dataset / "dev.json").read_text(encoding="utf-8"))
    return kb, dev["queries"]


def oos_train(eval_dir: Path, dataset: str, wanted: bool) -> list[str]:
    """The dataset's out-of-scope training questions (none without --oos-train or the file)."""
    path = eval_dir / dataset / "oos_train.json"
    if not wanted or not path.exists():
        return []
    queries = json.loads(path.read_text(encoding="utf-8"))["queries"]
    return [q["text"] for q in queries if q["expected"] is None]


def timed_predictions(predictor: Predictor, queries: list[Any]) -> dict[str, Any]:
    """Predictions one query at a time, each with its wall time in ms (after one warm-up)."""
    predictor.predict(queries[0]["text"])
    predictions = {}
    for q in queries:
        started = time.perf_counter()
        record = predictor.predict(q["text"])
        record["ms"] = (time.perf_counter() - started) * 1000.0
        predictions[q["qid"]] = record
    return predictions


def build(
    args: argparse.Namespace, name: str, kb: KnowledgeBase, rejects: list[str], folder: Path | None
) -> Matcher:
    """The matcher for one KB: with --default-oos as the bot builds it, else with `rejects`."""
    cache = EmbeddingCache(folder)
    if not args.default_oos:
        return build_matcher(kb, None, cache, args.titles, rejects)
    matcher, chosen = build_bot_matcher(kb, None, cache, args.titles, use_default=True)
    used = f"{len(chosen.examples)} default examples ({len(chosen.yielded)} left to the entries)"
    print(f"{name}: {used}", file=sys.stderr, flush=True)
    return matcher


def bench(args: argparse.Namespace) -> None:
    score = scorer(args.eval_dir)
    rows = []
    for dataset, variant in VARIANTS:
        if args.only and f"{dataset}/{variant}" not in args.only:
            continue
        kb_doc, queries = load(args.eval_dir, dataset, variant)
        kb = parse_faq_kb(kb_doc, dataset)
        rejects = oos_train(args.eval_dir, dataset, args.oos_train)
        name = f"{dataset}/{variant}"
        with tempfile.TemporaryDirectory(prefix="faq-cold-") as scratch:
            cold = None
            folder = args.cache_dir
            if not args.skip_cold:
                folder = Path(scratch)
                started = time.perf_counter()
                build(args, name, kb, rejects, folder)
                cold = time.perf_counter() - started
            started = time.perf_counter()
            matcher = build(args, name, kb, rejects, folder)
            warm = time.perf_counter() - started
        predictions = timed_predictions(Predictor(matcher, kb_doc["language"]), queries)
        m = score.compute_metrics(queries, predictions, {e["id"] for e in kb_doc["entries"]})
        rows.append((f"{dataset}/{variant}", len(kb_doc["entries"]), m, cold, warm))
        print(f"{dataset}/{variant}: {_row(m, cold, warm)}", file=sys.stderr, flush=True)
    examples = "oos_train" if args.oos_train else "default set" if args.default_oos else "none"
    print(f"titles as examples: {args.titles}; out-of-scope examples: {examples}")
    print(
        "| KB | entries | in-scope acc | closed-set acc | OOS recall | OOS precision "
        "| ms p50 | ms p95 | build cold s | build warm s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, n, m, cold, warm in rows:
        print(f"| {name} | {n} | {_row(m, cold, warm)} |")


def _row(m: dict[str, Any], cold: float | None, warm: float) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}"

    return " | ".join(
        [
            pct(m["in_scope_accuracy"]),
            pct(m["closed_set_accuracy"]),
            pct(m["oos_recall"]),
            pct(m["oos_precision"]),
            f"{m['ms_p50']:.1f}",
            f"{m['ms_p95']:.1f}",
            "n/a" if cold is None else f"{cold:.1f}",
            f"{warm:.2f}",
        ]
    )


def tune(args: argparse.Namespace) -> None:
    cache = EmbeddingCache(args.cache_dir)
    encoders = [CachedEncoder(e, cache) for e in default_encoders()]
    sets = []
    for dataset, variant in VARIANTS:
        kb_doc, queries = load(args.eval_dir, dataset, variant)
        kb = parse_faq_kb(kb_doc)
        if args.default_oos:  # as the bot builds it
            matcher, _ = build_bot_matcher(kb, encoders, cache, args.titles, use_default=True)
        else:
            matcher = build_matcher(kb, encoders, cache, use_titles=args.titles)
        index = {e: i for i, e in enumerate(matcher.entry_ids)}
        comps = [matcher.components(q["text"]) for q in queries]
        expected = np.array([index.get(q["expected"], -1) for q in queries])
        sets.append((f"{dataset}/{variant}", comps, expected))
        print(f"components: {dataset}/{variant}", file=sys.stderr, flush=True)
    grid = itertools.product([1.0], [0.0, 1.0], [0.0, 2.0, 5.0, 10.0], [0.0, 2.0, 5.0, 10.0])
    best = max(grid, key=lambda w: statistics.fmean(_closed(s, w) for s in sets))
    print(
        "fusion weights (linear, hidden, centroid, lexical):",
        best,
        [round(100 * _closed(s, best), 2) for s in sets],
    )
    feats, correct, weight, tops, outvoted = [], [], [], [], []
    for _, comps, expected in sets:
        for c, exp in zip(comps, expected, strict=True):
            fused = (
                best[0] * c.linear + best[1] * c.hidden + best[2] * c.centroid + best[3] * c.lexical
            ).astype(np.float32)
            f, p = tuning.calibration_features(fused, c.centroid, c.lexical, c.nearest)
            # the out-of-scope class beating every entry (with --default-oos) rejects whatever
            # the calibrator says
            share = tuning.rejection_share(fused, c.out_of_scope) if c.out_of_scope else None
            outvoted.append(share is not None)
            feats.append(f)
            correct.append(float(int(np.argmax(p)) == exp))
            weight.append(1.0 / len(comps))
            tops.append(int(np.argmax(p)))
    x, y, w = np.array(feats), np.array(correct), np.array(weight) * len(sets)
    beta = _fit_logistic(x, y, w)
    print("CALIBRATION =", tuple(round(float(b), 3) for b in beta))
    conf = 1.0 / (1.0 + np.exp(-(beta[0] + x @ beta[1:])))
    bounds = np.cumsum([0] + [len(c) for _, c, _ in sets])
    expected_all = np.concatenate([e for _, _, e in sets])
    predicted = np.array(tops)
    kept = ~np.array(outvoted)

    def overall(t: float) -> list[float]:
        pred = np.where((conf >= t) & kept, predicted, -1)
        return [
            float((pred[a:b] == expected_all[a:b]).mean()) for a, b in itertools.pairwise(bounds)
        ]

    thresholds = np.round(np.arange(0.05, 0.95, 0.01), 2)
    reject = max(thresholds, key=lambda t: statistics.fmean(overall(t)))
    print(
        "REJECT_BELOW =",
        reject,
        "mean overall accuracy",
        round(100 * statistics.fmean(overall(reject)), 2),
    )

    def split(t: float) -> list[str]:
        pred = np.where((conf >= t) & kept, predicted, -1)
        out = []
        for a, b in itertools.pairwise(bounds):
            p, e = pred[a:b], expected_all[a:b]
            oos = f"/{100 * (p[e < 0] == -1).mean():.0f}" if (e < 0).any() else ""
            out.append(f"{100 * (p[e >= 0] == e[e >= 0]).mean():.1f}{oos}")
        return out

    for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, float(reject)):
        print(f"  threshold {t:.2f}: in-scope acc/OOS recall per set", " ".join(split(t)))
    answered_ok = [float(np.mean(y[conf >= t])) if (conf >= t).any() else 1.0 for t in thresholds]
    answer_at = next((t for t, ok in zip(thresholds, answered_ok, strict=True) if ok >= 0.95), 0.9)
    print("ANSWER_AT =", answer_at, "(pooled precision of direct answers >= 95%)")


def languages(args: argparse.Namespace) -> None:
    cache = EmbeddingCache(args.cache_dir)
    full = car_workshop()
    off_topic = {
        name: [q["text"] for q in load(args.eval_dir, name, "full")[1] if q["expected"] is None]
        for name in ("smp2017", "clinc150")
    }
    print("| KB | questions | right entry first | answered right | rejected |")
    print("|---|---|---|---|---|")
    english = full.with_questions_in("en")
    # English, but its first two entries keep their Chinese questions too
    mostly = KnowledgeBase(tuple(full.entries[:2]) + english.entries[2:], english.out_of_scope)
    variants: list[tuple[str, KnowledgeBase, str | None]] = [
        ("en-only", english, "zh"),
        ("zh-only", full.with_questions_in("zh"), "en"),
        ("en + 2 entries in zh", mostly, "zh"),
        ("bilingual", full, None),
    ]
    for name, kb, asked in variants:
        matcher, _ = build_bot_matcher(kb, None, cache, args.titles, use_default=True)
        if asked is not None:  # the questions of the entries that have none in that language
            lacking = {e.id for e in kb.entries if not e.questions.get(asked)}
            questions = [
                (q, e.id) for e in full.entries if e.id in lacking for q in e.questions[asked]
            ]
            matches = [(matcher.match(q), expected) for q, expected in questions]
            first = sum(m.best is not None and m.best.entry_id == e for m, e in matches)
            right = sum(
                m.decision is Decision.ANSWER and m.best is not None and m.best.entry_id == e
                for m, e in matches
            )
            rejected = sum(m.decision is Decision.OUT_OF_SCOPE for m, _ in matches)
            print(
                f"| {name} | {len(matches)} {asked} | {_share(first, len(matches))} | "
                f"{_share(right, len(matches))} | {_share(rejected, len(matches))} |"
            )
        for dataset, texts in off_topic.items():
            decisions = [matcher.match(t).decision for t in texts]
            rejected = decisions.count(Decision.OUT_OF_SCOPE)
            answered = decisions.count(Decision.ANSWER)
            print(
                f"| {name} | {len(texts)} {dataset} out of scope | | "
                f"answered {_share(answered, len(texts))} | {_share(rejected, len(texts))} |"
            )


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %"


def _closed(s: tuple[str, list[Any], Any], w: tuple[float, ...]) -> float:
    _, comps, expected = s
    hits = [
        int(np.argmax(w[0] * c.linear + w[1] * c.hidden + w[2] * c.centroid + w[3] * c.lexical))
        == e
        for c, e in zip(comps, expected, strict=True)
        if e >= 0
    ]
    return float(np.mean(hits))


def _fit_logistic(x: Any, y: Any, w: Any) -> Any:
    a = np.hstack([np.ones((len(x), 1)), x])
    beta = np.zeros(a.shape[1])
    for _ in range(50):  # Newton's method with a tiny ridge
        p = 1.0 / (1.0 + np.exp(-(a @ beta)))
        grad = a.T @ (w * (p - y)) + 1e-4 * beta
        hess = (a * (w * p * (1 - p))[:, None]).T @ a + 1e-4 * np.eye(len(beta))
        beta -= np.linalg.solve(hess, grad)
    return beta


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("mode", nargs="?", choices=["bench", "tune", "languages"], default="bench")
    ap.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--no-titles", dest="titles", action="store_false", default=tuning.USE_TITLES)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--skip-cold", action="store_true")
    examples = ap.add_mutually_exclusive_group()
    examples.add_argument("--oos-train", action="store_true")
    examples.add_argument("--default-oos", action="store_true")
    args = ap.parse_args()
    {"bench": bench, "tune": tune, "languages": languages}[args.mode](args)


if __name__ == "__main__":
    main()
