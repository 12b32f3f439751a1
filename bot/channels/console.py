"""The console channel: talk to the bot in a terminal with `concierge chat`.

Each line typed on stdin is one message from the customer `user` on channel "console"; the
bot's replies are printed with Rich, their buttons as numbered choices ("1) English  2) 中文")
that are sent by typing the number. The chat ends on end of input, Ctrl-C or /quit, and the
database is always disposed on the way out.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import threading
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from bot.clock import SystemClock
from bot.config import Settings
from bot.engine import Engine
from bot.knowledge_base import KnowledgeService
from bot.storage.database import Database, StorageUnavailableError
from dialogs.types import Inbound, Reply

CHANNEL = "console"
QUIT_COMMANDS = frozenset({"/quit", "/exit"})


class StdinLines:
    """Lines from standard input, read off the event loop by a daemon thread.

    A thread blocked reading a terminal cannot be interrupted; with `asyncio.to_thread` the
    runner joins it on exit, so Ctrl-C would hang until Enter. A daemon thread reading the
    raw file descriptor (so no buffer lock is held at interpreter shutdown) just ends with
    the process. Lines reach the loop through a queue; None marks the end of input.
    """

    def __init__(self, fd: int = 0, encoding: str | None = None) -> None:
        self._fd = fd
        self._encoding = encoding or getattr(sys.stdin, "encoding", None) or "utf-8"
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=self._pump, name="console-stdin", daemon=True).start()

    async def next(self) -> str | None:
        """The next line without its line ending, or None at the end of input."""
        return await self._queue.get()

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder(self._encoding)(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self._fd, 4096)
            except OSError:
                chunk = b""  # stdin closed or unreadable: treat it as the end of input
            pending += decoder.decode(chunk, final=not chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                self._put(line.removesuffix("\r"))
            if not chunk:
                if pending:
                    self._put(pending)
                self._put(None)
                return

    def _put(self, line: str | None) -> None:
        # The loop is closed once the chat has ended; what is still typed is of no use.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)


def choices(replies: Sequence[Reply]) -> tuple[str, ...]:
    """The buttons of a set of replies, in order: what the numbers 1, 2, ... stand for."""
    return tuple(button for reply in replies for button in reply.buttons)


def chosen_text(line: str, offered: Sequence[str]) -> str:
    """The button text when `line` is the number of an offered choice, else the line itself."""
    number = line.strip()
    if number.isdigit() and 1 <= int(number) <= len(offered):
        return offered[int(number) - 1]
    return line


def print_replies(console: Console, speaker: str, replies: Sequence[Reply]) -> None:
    """The bot's replies, each followed by its buttons as numbered choices."""
    number = 0
    # Hard-wrapped lines would break sentences apart in a log or a pipe; a terminal wraps itself.
    soft = not console.is_terminal
    for reply in replies:
        console.print(Text.assemble((f"{speaker} › ", "bold cyan"), reply.text), soft_wrap=soft)
        if reply.buttons:
            listed = Text("   ")
            for index, button in enumerate(reply.buttons, start=number + 1):
                listed.append("  " if index > number + 1 else "")
                listed.append(f"{index}) ", style="bold magenta")
                listed.append(button)
            number += len(reply.buttons)
            console.print(listed, soft_wrap=soft)


def _language_hint() -> str | None:
    """The terminal's locale ("zh_CN.UTF-8"): a hint for a first message in neither script."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if value := os.environ.get(name):
            return value.split(".", 1)[0]
    return None


async def chat(settings: Settings, user: str, display_name: str | None = None) -> None:
    """Talk to the bot on stdin and stdout as the console customer `user`."""
    console = Console(highlight=False)
    database = Database(settings.database_url)
    try:
        await database.upgrade()
        console.print(
            Text(
                f"Chatting with {settings.business_name} as {user!r}. "
                "Type a message and press Enter; /quit or Ctrl-D to leave.",
                style="dim",
            ),
            soft_wrap=not console.is_terminal,
        )
        knowledge = KnowledgeService(database, settings.cache_dir)
        console.print(Text("Loading the knowledge base…", style="dim"))
        try:  # answer as the running bot does, from the same knowledge base
            await knowledge.refresh()
        except Exception as err:  # the chat still works; the bot then says it is not ready
            console.print(Text(f"Could not load the knowledge base: {err}", style="red"))
        engine = Engine(database, SystemClock(), settings, knowledge=lambda: knowledge.current)
        await _converse(console, engine, user, display_name)
    except asyncio.CancelledError:
        # asyncio.run turns Ctrl-C into cancelling this task: that is how a visitor says bye.
        console.print()
    finally:
        await database.dispose()


async def _converse(console: Console, engine: Engine, user: str, display_name: str | None) -> None:
    lines = StdinLines()
    speaker = engine.settings.business_name
    hint = _language_hint()
    prompt = sys.stdin is not None and sys.stdin.isatty()
    offered: tuple[str, ...] = ()
    while True:
        if prompt:
            console.print(Text("you › ", style="bold green"), end="")
        line = await lines.next()
        if line is None or line.strip().lower() in QUIT_COMMANDS:
            return
        if not line.strip():
            continue
        text = chosen_text(line, offered)
        if text != line:
            console.print(Text(f"   → {text}", style="dim"))
        try:
            replies = await engine.handle(
                Inbound(
                    channel=CHANNEL,
                    external_user_id=user,
                    chat_id=user,
                    text=text,
                    received_at=engine.clock.now(),
                    display_name=display_name,
                    language_hint=hint,
                )
            )
        except StorageUnavailableError as error:
            console.print(Text(f"The database is unavailable ({error}); please try again.", "red"))
            continue
        print_replies(console, speaker, replies)
        offered = choices(replies)
