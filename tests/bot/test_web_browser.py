"""The web chat in a real browser: Debian's chromium driven by Playwright against uvicorn.

One database (SQLite) is enough here; the API tests run on PostgreSQL as well. Without
/usr/bin/chromium these tests are skipped, unless CONCIERGE_TEST_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, Route, async_playwright, expect
from sqlalchemy import select

from bot.clock import ManualClock
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import MessageLog
from bot.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/concierge-webchat.png")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite only: this module overrides the two-database fixture of tests/conftest.py."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'concierge.db'}")
    await database.upgrade()
    yield database
    await database.dispose()


@pytest.fixture
async def site(engine: Engine) -> AsyncIterator[str]:
    async with serving(engine) as url:
        yield url


@pytest.fixture
async def faq_site(faq_engine: Engine) -> AsyncIterator[str]:
    """The web chat answering from the sample car-workshop knowledge base."""
    async with serving(faq_engine) as url:
        yield url


@asynccontextmanager
async def serving(engine: Engine) -> AsyncIterator[str]:
    """The web app served by uvicorn on a free port of 127.0.0.1, in this test's event loop."""
    # Binding here and handing the socket over leaves no window for another process to take it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(engine), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()  # the server died on start: show why
            await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        if os.environ.get("CONCIERGE_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser tests need {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


async def send(page: Page, text: str) -> None:
    box = page.get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")


async def test_a_visitor_is_greeted_remembered_and_welcomed_back(
    site: str, browser: Browser, clock: ManualClock
) -> None:
    context = await browser.new_context(locale="en-US", viewport={"width": 900, "height": 760})
    page = await context.new_page()
    await page.goto(site)
    box = page.get_by_label("Your message")
    conversation = page.locator("#messages")
    await expect(box).to_be_focused()
    await expect(page.get_by_role("button", name="Send")).to_be_visible()

    await send(page, "hi")
    await expect(page.locator(".message.user").last).to_have_text("You said: hi")
    await expect(page.locator(".message.bot").last).to_contain_text(
        "Hello! I'm the assistant of Concierge."
    )
    await expect(box).to_have_value("")
    await expect(box).to_be_focused()

    await send(page, "Anna")
    await expect(conversation.get_by_text("Nice to meet you, Anna")).to_be_visible()

    await send(page, "/language")
    chips = page.get_by_role("group", name="Suggested replies")
    await expect(chips.get_by_role("button")).to_have_text(["English", "中文"])
    await chips.get_by_role("button", name="English").click()
    await expect(conversation.get_by_text("Okay, I'll speak English from now")).to_be_visible()
    await expect(chips).to_have_count(0)  # answered choices do not linger
    await expect(box).to_be_focused()

    clock.advance(timedelta(hours=7))
    await page.reload()
    await send(page, "hello")
    await expect(conversation.get_by_text("Welcome back, Anna!")).to_be_visible()
    await expect(page.locator("#announcer")).to_contain_text("Welcome back, Anna!")

    await send(page, "/language")
    await expect(page.get_by_role("button", name="中文")).to_be_visible()
    await page.screenshot(path=str(SCREENSHOT))
    await context.close()


async def test_a_chinese_visitor_gets_chinese_labels_and_greeting(
    site: str, browser: Browser
) -> None:
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    await page.goto(site)

    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page).to_have_title("Concierge · 在线咨询")
    box = page.get_by_label("您的消息")
    await expect(box).to_have_attribute("placeholder", "请输入消息…")
    await expect(page.get_by_role("button", name="发送")).to_be_visible()
    await expect(page.locator("#typing-label")).to_have_text("助理正在输入…")

    await box.fill("你好")
    await box.press("Enter")
    await expect(page.locator(".message.bot").last).to_contain_text("您好！我是Concierge的助理")
    await context.close()


async def test_a_lost_answer_keeps_the_text_and_the_retry_is_handled_once(
    site: str, browser: Browser, db: Database
) -> None:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(site)

    async def handled_but_lost(route: Route) -> None:
        await route.fetch()  # the server handles the message...
        await route.abort()  # ...but its answer never reaches the page

    await page.route("**/api/chat/messages", handled_but_lost)

    await send(page, "Where is my car?\nPlate <b>AB-123</b>")

    await expect(page.get_by_role("alert")).to_contain_text("could not be sent")
    await expect(page.get_by_label("Your message")).to_have_value(
        "Where is my car?\nPlate <b>AB-123</b>"
    )
    await expect(page.locator(".message.user .status")).to_have_text("Not sent")

    await page.unroute("**/api/chat/messages")
    await page.get_by_role("button", name="Send").click()

    bot = page.locator(".message.bot")
    await expect(bot).to_have_count(2)  # the greeting, then the answer to the question
    await expect(page.get_by_role("alert")).to_be_hidden()
    await expect(page.locator(".message.user")).to_have_count(1)
    async with db.sessions() as session:
        inbound = await session.scalars(select(MessageLog).where(MessageLog.direction == "in"))
        assert [row.text for row in inbound] == ["Where is my car?\nPlate <b>AB-123</b>"]
    # Shown as typed, newline and all: the text is never parsed as HTML.
    user = page.locator(".message.user .text")
    assert await user.inner_text() == "Where is my car?\nPlate <b>AB-123</b>"
    await expect(page.locator(".message.user b")).to_have_count(0)
    await context.close()


async def test_a_staff_answer_to_a_complaint_appears_in_the_open_page(
    site: str, browser: Browser, clock: ManualClock, db: Database, engine: Engine
) -> None:
    from bot import tickets
    from bot.channels.web_inbox import WebInbox
    from bot.storage.models import Staff, Ticket
    from scheduler.dispatcher import Dispatcher

    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(site)
    conversation = page.locator("#messages")
    await send(page, "hi")  # each message waits for its answer: the page sends one at a time
    await expect(conversation.get_by_text("What's your name")).to_be_visible()
    await send(page, "Anna")
    await expect(conversation.get_by_text("Nice to meet you, Anna")).to_be_visible()
    await send(page, "I want to make a complaint: my car was returned dirty")
    await expect(conversation.get_by_text("Your ticket number is #1.")).to_be_visible()

    async with db.transaction() as session:
        staff = Staff(name="Bo", role="agent", created_at=clock.now())
        session.add(staff)
        await session.flush()
        ticket = await session.get_one(Ticket, 1)
        await tickets.answer(
            session, ticket, staff, "Sorry Anna, we'll clean it today.", clock.now()
        )
    dispatcher = Dispatcher(db, clock, {"web": WebInbox(db, clock)}, engine.settings)
    await dispatcher.dispatch_due()
    # Nothing typed: the page finds the answer in its inbox by itself, and shows it once.
    answer = conversation.get_by_text("Sorry Anna, we'll clean it today.")
    await expect(answer).to_be_visible(timeout=10_000)
    await page.reload()  # the inbox remembers what was shown: no repeat after a reload
    await page.wait_for_timeout(5_000)
    await expect(answer).to_have_count(0)


async def test_a_visitor_asks_the_faq_picks_a_suggestion_and_is_offered_a_person(
    faq_site: str, browser: Browser
) -> None:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(faq_site)
    conversation = page.locator("#messages")
    chips = page.get_by_role("group", name="Suggested replies")
    await send(page, "hi")
    await expect(conversation.get_by_text("What's your name")).to_be_visible()
    await send(page, "Anna")
    await expect(conversation.get_by_text("Nice to meet you, Anna")).to_be_visible()

    await send(page, "what time do you open on saturday?")
    answer = page.locator(".message.bot").last
    await expect(answer).to_contain_text("Saturday")
    await expect(answer).to_contain_text("Saturday 08:00–13:00")

    await send(page, "What's the meaning of life?")
    await expect(page.locator(".message.bot").last).to_contain_text("I don't know")
    person = chips.get_by_role("button", name="Talk to a person")
    await expect(person).to_be_visible()
    await person.click()
    await expect(conversation.get_by_text("Your ticket number is #1.")).to_be_visible()
    await context.close()
