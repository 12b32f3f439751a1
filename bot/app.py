"""Starting the bot: migrate the database, then serve the web chat and Telegram side by side.

The scheduler role (birthday, reminder and campaign jobs and the outbox dispatcher) runs here
too, in whichever `concierge run` process holds the leader lock (see `scheduler.leader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.engine import Engine
from bot.knowledge_base import KnowledgeService
from bot.storage.database import Database
from knowledge.complaints import ComplaintClassifier
from knowledge.encoder import EmbeddingCache

log = logging.getLogger(__name__)


async def serve(settings: Settings, clock: Clock | None = None) -> None:
    """Run until interrupted: web chat always, Telegram long polling when a token is set,
    proactive messages when this process holds the scheduler role."""
    from bot.channels.telegram import CHANNEL as TELEGRAM
    from bot.channels.telegram import TelegramChannel
    from bot.channels.web_inbox import CHANNEL as WEB
    from bot.channels.web_inbox import WebInbox
    from bot.staff.telegram import TelegramStaffChat
    from bot.web.app import create_app
    from scheduler.runtime import ProactiveRuntime
    from scheduler.telegram_sender import dispatch_channels

    clock = clock or SystemClock()
    database = Database(settings.database_url)
    await database.upgrade()
    knowledge = KnowledgeService(database, settings.cache_dir)
    complaints: list[ComplaintClassifier] = []  # filled once trained; the lexicon works meanwhile

    async def train_complaint_model() -> None:
        try:
            cache = EmbeddingCache(settings.cache_dir)
            complaints.append(await asyncio.to_thread(ComplaintClassifier.build, cache=cache))
            log.info("complaint model ready (threshold %.2f)", complaints[0].threshold)
        except Exception:  # the lexicon alone still recognises complaints
            log.exception("could not build the complaint model; using the lexicon alone")

    engine = Engine(
        database,
        clock,
        settings,
        knowledge=lambda: knowledge.current,
        complaint_model=lambda: complaints[0] if complaints else None,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine),
            host=settings.web_host,
            port=settings.web_port,
            log_level="warning",
            lifespan="off",
        )
    )
    background: list[asyncio.Task[None]] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            if settings.telegram_token is not None:
                from bot.channels.telegram_poller import build_poller

                background.append(asyncio.create_task(build_poller(engine, settings).run()))
                log.info("Telegram: long polling %s", settings.telegram_api_url)
            else:
                log.info("Telegram: off (set CONCIERGE_TELEGRAM_TOKEN to connect a bot)")
            channels = {
                **await stack.enter_async_context(dispatch_channels(settings, clock)),
                WEB: WebInbox(database, clock),  # staff answers and reminders for web visitors
            }
            telegram = channels.get(TELEGRAM)
            staff_chat = (
                TelegramStaffChat(telegram.bot) if isinstance(telegram, TelegramChannel) else None
            )
            runtime = ProactiveRuntime(database, clock, settings, channels, staff_chat=staff_chat)
            background.append(asyncio.create_task(runtime.run()))
            # The web chat opens at once; questions are answered from the knowledge base as soon
            # as it is indexed (seconds, or about a minute on a first start with a new KB).
            background.append(asyncio.create_task(knowledge.keep_fresh()))
            background.append(asyncio.create_task(train_complaint_model()))
            log.info("Database: %s", database.engine.url.render_as_string(hide_password=True))
            log.info("Web chat on http://%s:%s", settings.web_host, settings.web_port)
            try:
                await server.serve()
            finally:
                for task in background:
                    task.cancel()
                for task in background:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        await database.dispose()
