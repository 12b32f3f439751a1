"""`concierge kb ...`: import the knowledge base, look at it, ask it, and find its gaps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select

from bot.cli.common import console, errors, load_settings, migrated
from bot.clock import SystemClock
from bot.knowledge_base import replace_entries, stored_base
from bot.storage.models import MessageLog
from dialogs.faq import label
from knowledge.encoder import EmbeddingCache
from knowledge.entries import KnowledgeBase, KnowledgeFileError
from knowledge.loaders import load_knowledge_base
from knowledge.matcher import build_matcher
from knowledge.samples import car_workshop

kb_app = typer.Typer(
    help="The knowledge base the bot answers questions from.", no_args_is_help=True
)

ExistingFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def _load(file: Path) -> KnowledgeBase:
    try:
        return load_knowledge_base(file)
    except KnowledgeFileError as error:
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
    settings = load_settings()

    async def _store() -> None:
        async with migrated(settings) as database:
            await replace_entries(database, base, SystemClock().now())

    asyncio.run(_store())
    languages = ", ".join(sorted(base.languages))
    console.print(f"Imported {len(base)} entries ({languages}) from {file}.", markup=False)


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


@kb_app.command("ask")
def kb_ask(
    question: Annotated[str, typer.Argument(help="A question as a customer writes it.")],
) -> None:
    """Show the 3 best entries for QUESTION with their scores and what the bot would do."""
    settings = load_settings()
    base, source = asyncio.run(_current())
    matcher = build_matcher(base, cache=EmbeddingCache(settings.cache_dir))
    match = matcher.match(question, top_k=3)
    table = Table("rank", "entry", "score", title=f"{question}  →  {match.decision.value}")
    for rank, candidate in enumerate(match.candidates, 1):
        entry = base.get(candidate.entry_id)
        name = label(entry, "en") if entry else candidate.entry_id
        table.add_row(str(rank), f"{candidate.entry_id} ({name})", f"{candidate.score:.2f}")
    console.print(table)
    console.print(f"answering from the {source} knowledge base", style="dim")


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
