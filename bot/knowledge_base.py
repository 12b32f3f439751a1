"""The knowledge base at run time: stored in the database, indexed once, swapped when it changes.

`concierge kb import` replaces the stored entries in one transaction; the running bot notices
the new version and builds a new matcher in a worker thread while it keeps answering from the
old one. Until a business imports its own, the bot answers from the sample car-workshop KB
shipped in `knowledge.samples`.

The knowledge base's out-of-scope examples are stored in the same table, as one reserved row
(`OUT_OF_SCOPE_ROW`, an id no loader accepts for an entry) after the entries: they are
replaced together, in the same transaction, and the version fingerprint covers them. The matcher
learns them, or the shipped default set when the knowledge base has none of its own
(`knowledge.out_of_scope`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import delete, func, select

from bot.storage.database import Database
from bot.storage.models import KnowledgeEntryRow
from dialogs.faq import Knowledge
from knowledge.encoder import EmbeddingCache
from knowledge.entries import Entry, KnowledgeBase, KnowledgeBaseError, Link
from knowledge.out_of_scope import build_bot_matcher
from knowledge.samples import car_workshop

log = logging.getLogger(__name__)

#: The id of the row that holds the out-of-scope examples: brackets and spaces cannot appear in
#: an entry id written in YAML, CSV or Markdown, and `check_storable` refuses it from JSON.
OUT_OF_SCOPE_ROW: Final = "[out of scope]"


def entry_to_json(entry: Entry) -> dict[str, Any]:
    data = asdict(entry)
    data["questions"] = {lang: list(qs) for lang, qs in entry.questions.items()}
    return data


def entry_from_json(data: dict[str, Any]) -> Entry:
    return Entry(
        id=data["id"],
        questions={lang: tuple(qs) for lang, qs in data.get("questions", {}).items()},
        answers=dict(data.get("answers", {})),
        titles=dict(data.get("titles", {})),
        tags=tuple(data.get("tags", ())),
        links=tuple(Link(**link) for link in data.get("links", ())),
        follow_ups=tuple(data.get("follow_ups", ())),
    )


def check_storable(base: KnowledgeBase) -> None:
    """KnowledgeBaseError when an entry would take the out-of-scope examples' reserved row."""
    if OUT_OF_SCOPE_ROW in base:
        reason = f"the id {OUT_OF_SCOPE_ROW!r} is reserved for the out-of-scope examples"
        raise KnowledgeBaseError(f"{reason}: rename the entry")


async def replace_entries(database: Database, base: KnowledgeBase, now: datetime) -> None:
    """Make `base` the knowledge base, all at once: a failure leaves the old one in place."""
    check_storable(base)
    rows = [
        KnowledgeEntryRow(id=e.id, position=i, data=entry_to_json(e), updated_at=now)
        for i, e in enumerate(base.entries)
    ]
    if base.out_of_scope:
        examples = {lang: list(qs) for lang, qs in base.out_of_scope.items()}
        data = {"out_of_scope": examples}
        rows.append(
            KnowledgeEntryRow(id=OUT_OF_SCOPE_ROW, position=len(rows), data=data, updated_at=now)
        )
    async with database.transaction() as session:
        await session.execute(delete(KnowledgeEntryRow))
        session.add_all(rows)


async def stored_version(database: Database) -> tuple[int, datetime | None]:
    """A cheap fingerprint of the stored entries: (count, last update)."""
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(func.count(), func.max(KnowledgeEntryRow.updated_at)).select_from(
                    KnowledgeEntryRow
                )
            )
        ).one()
    return int(row[0]), row[1]


async def stored_base(database: Database) -> KnowledgeBase | None:
    """The imported knowledge base, or None when the business has not imported one."""
    entries: list[Entry] = []
    out_of_scope: dict[str, tuple[str, ...]] = {}
    async with database.sessions() as session:
        rows = await session.scalars(select(KnowledgeEntryRow).order_by(KnowledgeEntryRow.position))
        for row in rows:
            if row.id == OUT_OF_SCOPE_ROW:
                examples = row.data.get("out_of_scope", {})
                out_of_scope = {lang: tuple(qs) for lang, qs in sorted(examples.items())}
            else:
                entries.append(entry_from_json(row.data))
    return KnowledgeBase(tuple(entries), out_of_scope) if entries else None


class KnowledgeService:
    """Holds the current `Knowledge` and rebuilds it when the stored entries change."""

    def __init__(self, database: Database, cache_dir: Path | None) -> None:
        self._database = database
        self._cache = EmbeddingCache(cache_dir)
        self._version: tuple[int, datetime | None] | None = None
        self.current: Knowledge | None = None

    async def refresh(self) -> bool:
        """Rebuild when the stored knowledge base changed; True when a new one is in use."""
        version = await stored_version(self._database)
        if version == self._version and self.current is not None:
            return False
        base = await stored_base(self._database) or car_workshop()
        started = asyncio.get_running_loop().time()
        matcher, rejects = await asyncio.to_thread(build_bot_matcher, base, None, self._cache)
        await asyncio.to_thread(matcher.warm_up)  # load the models now, not at the first question
        self.current, self._version = Knowledge(base, matcher), version
        elapsed = asyncio.get_running_loop().time() - started
        source = "imported" if version[0] else "sample car-workshop"
        log.info(
            "knowledge base: %d entries (%s), %d out-of-scope examples (%s; %d left to entries; "
            "not learnt, as the entries ask less in that language: %s), indexed in %.1f s",
            len(base),
            source,
            len(rejects.examples),
            rejects.source.value,
            len(rejects.yielded),
            ", ".join(f"{n} {language}" for language, n in rejects.left_out) or "none",
            elapsed,
        )
        return True

    async def keep_fresh(self, every: float = 30.0) -> None:
        """Index now, then poll for a new import while the bot runs (cancel to stop)."""
        while True:
            try:
                await self.refresh()
            except Exception:  # a bad rebuild must not take the bot down; keep the old index
                log.exception("could not index the knowledge base; answering from the previous one")
            await asyncio.sleep(every)
