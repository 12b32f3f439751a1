"""`concierge kb ...`: import the knowledge base, look at it, ask it, measure it, find its gaps."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape
from rich.progress import track
from rich.table import Table
from sqlalchemy import func, select

from bot.cli.common import console, errors, load_settings, migrated
from bot.clock import SystemClock
from bot.knowledge_base import check_storable, replace_entries, stored_base
from bot.storage.models import MessageLog
from dialogs.faq import label
from knowledge.encoder import EmbeddingCache
from knowledge.entries import KnowledgeBase, KnowledgeBaseError, KnowledgeFileError
from knowledge.evaluation import Prediction, Scores, parse_queries, predict, score
from knowledge.loaders import load_knowledge_base
from knowledge.loaders.drafts import decode
from knowledge.out_of_scope import OutOfScope, Source, build_bot_matcher, choose_examples
from knowledge.samples import car_workshop

kb_app = typer.Typer(
    help="The knowledge base the bot answers questions from.", no_args_is_help=True
)

ExistingFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def _load(file: Path) -> KnowledgeBase:
    try:
        return load_knowledge_base(file)
    except KnowledgeFileError as error:
        _fail(error)


def _examples_summary(chosen: OutOfScope) -> str:
    """How many out-of-scope examples the bot learns, and whose they are."""
    if chosen.source is Source.NONE:
        return "out-of-scope examples: none"
    left = f"; {len(chosen.yielded)} left to the entries" if chosen.yielded else ""
    for language, count in chosen.left_out:  # else the language itself would mean "reject"
        left += f"; {count} in {language} not learnt (the entries ask fewer questions in it)"
    return f"out-of-scope examples: {len(chosen.examples)} ({chosen.source.value}{left})"


def _fail(error: KnowledgeFileError) -> NoReturn:
    errors.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
    raise typer.Exit(1) from None


async def _current() -> tuple[KnowledgeBase, str]:
    async with migrated(load_settings()) as database:
        base = await stored_base(database)
    return (base, "imported") if base else (car_workshop(), "sample car-workshop")


@kb_app.command("import")
def kb_import(file: ExistingFile) -> None:
    """Replace the knowledge base with FILE (.yaml, .csv, .md or faq-kb/1 .json)."""
    base = _load(file)
    try:
        check_storable(base)
    except KnowledgeBaseError as error:
        _fail(KnowledgeFileError(str(file), str(error)))
    settings = load_settings()

    async def _store() -> None:
        async with migrated(settings) as database:
            await replace_entries(database, base, SystemClock().now())

    asyncio.run(_store())
    languages = ", ".join(sorted(base.languages))
    examples = sum(len(qs) for qs in base.out_of_scope.values())
    also = f" and {examples} out-of-scope examples" if examples else ""
    console.print(f"Imported {len(base)} entries ({languages}){also} from {file}.", markup=False)


@kb_app.command("list")
def kb_list() -> None:
    """The entries the bot answers from."""
    base, source = asyncio.run(_current())
    table = Table("id", "en", "zh", "questions", title=f"Knowledge base ({source})")
    for entry in base:
        table.add_row(
            entry.id,
            label(entry, "en") if "en" in entry.questions else "",
            label(entry, "zh") if "zh" in entry.questions else "",
            str(sum(len(qs) for qs in entry.questions.values())),
        )
    console.print(table)
    console.print(_examples_summary(choose_examples(base)), markup=False)


@kb_app.command("ask")
def kb_ask(
    question: Annotated[str, typer.Argument(help="A question as a customer writes it.")],
) -> None:
    """Show the 3 best entries for QUESTION with their scores and what the bot would do."""
    settings = load_settings()
    base, source = asyncio.run(_current())
    matcher, chosen = build_bot_matcher(base, cache=EmbeddingCache(settings.cache_dir))
    match = matcher.match(question, top_k=3)
    table = Table("rank", "entry", "score", title=f"{question}  →  {match.decision.value}")
    for rank, candidate in enumerate(match.candidates, 1):
        entry = base.get(candidate.entry_id)
        name = label(entry, "en") if entry else candidate.entry_id
        table.add_row(str(rank), f"{candidate.entry_id} ({name})", f"{candidate.score:.2f}")
    console.print(table)
    console.print(
        f"answering from the {source} knowledge base; {_examples_summary(chosen)}", style="dim"
    )


@kb_app.command("eval")
def kb_eval(
    kb: Annotated[Path, typer.Option(help="The knowledge base (.yaml, .csv, .md or .json).")],
    queries: Annotated[
        Path, typer.Option(help="Labelled questions: faq-queries/1 JSON (see README).")
    ],
    cache_dir: Annotated[
        Path | None, typer.Option(help="Embedding cache folder (default: CONCIERGE_CACHE_DIR).")
    ] = None,
) -> None:
    """How well the bot answers the questions in QUERIES from the knowledge base KB."""
    base = _load(kb)
    try:
        query_set = parse_queries(
            decode(queries.read_bytes(), str(queries)), str(queries), {e.id for e in base}
        )
    except OSError as error:
        _fail(KnowledgeFileError(str(queries), f"cannot read the file: {error.strerror or error}"))
    except KnowledgeFileError as error:
        _fail(error)
    folder = cache_dir if cache_dir is not None else load_settings().cache_dir
    started = time.perf_counter()
    matcher, chosen = build_bot_matcher(base, cache=EmbeddingCache(folder))  # as the bot does
    matcher.warm_up()
    build_s = time.perf_counter() - started
    predictions: list[Prediction] = []
    ms: list[float] = []
    for query in track(query_set.queries, "matching", console=errors, transient=True):
        started = time.perf_counter()
        predictions.append(predict(matcher, query.text, query_set.language))
        ms.append((time.perf_counter() - started) * 1000.0)
    scores = score(query_set.queries, predictions, ms)
    console.print(_scores_table(scores, f"{kb.name} ({len(base)} entries) × {queries.name}"))
    console.print(
        f"knowledge base built in {build_s:.2f} s; {_examples_summary(chosen)}", style="dim"
    )


def _scores_table(s: Scores, title: str) -> Table:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f} ms"

    table = Table("metric", "value", title=title)
    table.add_row("queries", f"{s.n_in_scope} in scope, {s.n_out_of_scope} out of scope")
    table.add_row("in-scope accuracy", pct(s.in_scope_accuracy))
    table.add_row("closed-set accuracy", pct(s.closed_set_accuracy))
    table.add_row("OOS recall", pct(s.oos_recall))
    table.add_row("OOS precision", pct(s.oos_precision))
    table.add_row("per query p50 / p95", f"{ms(s.ms_p50)} / {ms(s.ms_p95)}")
    table.add_row(
        "decisions", ", ".join(f"{d.value.replace('_', ' ')} {n}" for d, n in s.decisions.items())
    )
    return table


@kb_app.command("gaps")
def kb_gaps(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """Questions the bot could not answer, most frequent first: what to add next."""

    async def _gaps() -> list[tuple[str, int, object]]:
        async with migrated(load_settings()) as database, database.sessions() as session:
            text = func.lower(MessageLog.text)
            rows = await session.execute(
                select(text, func.count(), func.max(MessageLog.created_at))
                .where(MessageLog.direction == "in", MessageLog.intent == "faq.unknown")
                .group_by(text)
                .order_by(func.count().desc(), func.max(MessageLog.created_at).desc())
                .limit(limit)
            )
            return [(row[0], int(row[1]), row[2]) for row in rows]

    gaps = asyncio.run(_gaps())
    if not gaps:
        console.print("No unanswered questions so far.")
        return
    table = Table("times asked", "question", "last asked", title="Unanswered questions")
    for question, times, last in gaps:
        table.add_row(str(times), question, f"{last:%Y-%m-%d %H:%M}" if last else "")
    console.print(table)
