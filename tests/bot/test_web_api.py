"""The web chat API as a client sees it, on SQLite and PostgreSQL: replies, memory, errors."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import Customer, MessageLog
from bot.web.app import create_app

MESSAGES = "/api/chat/messages"


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://concierge.test") as client:
        yield client


async def say(client: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(MESSAGES, json=body)
    assert response.status_code == 200, response.text
    replies: list[dict[str, Any]] = response.json()["replies"]
    return replies


async def count(database: Database, model: type[Customer] | type[MessageLog], **where: Any) -> int:
    async with database.sessions() as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return int(await session.scalar(query) or 0)


async def test_first_message_greets_and_offers_the_display_name(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        MESSAGES, json={"session": "visitor-1", "text": "hi", "display_name": "Anna"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "replies": [
            {
                "text": "Hello, Anna! I'm the assistant of Concierge. "
                "How would you like me to address you?",
                "buttons": ["Anna"],
            }
        ]
    }


async def test_a_visitor_without_a_name_is_asked_for_one_and_gets_no_buttons(
    client: httpx.AsyncClient,
) -> None:
    replies = await say(client, session="visitor-2", text="hello")

    assert len(replies) == 1
    assert set(replies[0]) == {"text", "buttons"}
    assert replies[0]["buttons"] == []
    assert "What's your name" in replies[0]["text"]


async def test_the_language_hint_chooses_chinese_when_the_text_does_not_say(
    client: httpx.AsyncClient,
) -> None:
    replies = await say(client, session="visitor-zh", text="👋", language="zh")

    assert replies[0]["text"].startswith("您好！我是Concierge的助理")


async def test_an_empty_message_is_answered_not_refused(client: httpx.AsyncClient) -> None:
    await say(client, session="visitor-3", text="hi")

    replies = await say(client, session="visitor-3", text="")

    assert replies == [
        {"text": "I didn't receive any text. Please type your message.", "buttons": []}
    ]


async def test_a_returning_visitor_is_welcomed_back_by_name(
    client: httpx.AsyncClient, clock: ManualClock, settings: Settings
) -> None:
    first = await say(client, session="anna", text="hi", display_name="Anna")
    chosen = await say(client, session="anna", text=first[0]["buttons"][0])
    assert chosen[0]["text"].startswith("Nice to meet you, Anna!")

    clock.advance(timedelta(hours=1))
    soon = await say(client, session="anna", text="hello")
    assert "Welcome back" not in soon[0]["text"]

    clock.advance(settings.greeting_gap)
    later = await say(client, session="anna", text="hello")
    assert later[0]["text"].startswith("Welcome back, Anna!")


async def test_a_retried_message_id_gets_the_same_replies_and_is_logged_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = {"session": "retry", "text": "hi", "display_name": "Bo", "message_id": "m-1"}

    first = await client.post(MESSAGES, json=body)
    again = await client.post(MESSAGES, json=body)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert await count(db, MessageLog, direction="in") == 1
    assert await count(db, Customer) == 1

    await client.post(MESSAGES, json={**body, "message_id": "m-2", "text": "Bo"})
    assert await count(db, MessageLog, direction="in") == 2


INVALID: list[tuple[str, Any, str]] = [
    ("missing session", {"text": "hi"}, "session: required"),
    ("empty session", {"session": "", "text": "hi"}, "session: must be 1 to 128 characters"),
    ("session with a space", {"session": "a b", "text": "hi"}, "session: must be"),
    ("session too long", {"session": "s" * 129, "text": "hi"}, "session: must be"),
    ("session a number", {"session": 7, "text": "hi"}, "session: must be"),
    ("missing text", {"session": "s"}, "text: required"),
    (
        "text too long",
        {"session": "s", "text": "x" * 10_001},
        "text: must be a string of at most 10000 characters",
    ),
    ("text a number", {"session": "s", "text": 42}, "text: must be a string"),
    ("text a list", {"session": "s", "text": ["hi"]}, "text: must be a string"),
    ("text null", {"session": "s", "text": None}, "text: must be a string"),
    ("bad language", {"session": "s", "text": "hi", "language": "fr"}, 'language: must be "en"'),
    (
        "display name too long",
        {"session": "s", "text": "hi", "display_name": "n" * 201},
        "display_name: must be a string of at most 200 characters",
    ),
    ("display name a number", {"session": "s", "text": "hi", "display_name": 1}, "display_name"),
    ("bad message id", {"session": "s", "text": "hi", "message_id": "a/b"}, "message_id: must"),
    ("a list, not an object", ["s", "hi"], "body: must be a JSON object"),
    ("a bare string", "hi", "body: must be a JSON object"),
]


@pytest.mark.parametrize(
    ("body", "error"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
async def test_invalid_input_is_refused_clearly_and_writes_nothing(
    client: httpx.AsyncClient, db: Database, body: Any, error: str
) -> None:
    response = await client.post(MESSAGES, json=body)

    assert response.status_code == 422
    assert set(response.json()) == {"error"}
    assert response.json()["error"].startswith(error), response.json()
    assert await count(db, Customer) == 0
    assert await count(db, MessageLog) == 0


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"session": "s", "text": ', {"content-type": "application/json"}),
        (b"\xff\xfe not utf-8", {"content-type": "application/json"}),
        (b'{"session": "s", "text": "hi"}', {"content-type": "text/plain"}),
    ],
    ids=["truncated JSON", "not UTF-8", "not declared as JSON"],
)
async def test_malformed_bodies_are_refused_clearly_and_write_nothing(
    client: httpx.AsyncClient, db: Database, content: bytes, headers: dict[str, str]
) -> None:
    response = await client.post(MESSAGES, content=content, headers=headers)

    assert response.status_code == 422
    assert response.json()["error"].startswith("body: ")
    assert await count(db, MessageLog) == 0


async def test_a_message_of_exactly_10000_characters_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    replies = await say(client, session="long", text="y" * 10_000)

    assert replies


async def test_lone_surrogates_are_refused_clearly(client: httpx.AsyncClient, db: Database) -> None:
    # JSON may escape half of a UTF-16 pair; that is no text, and no database could store it.
    body = '{"session": "odd", "text": "hi \\ud800", "display_name": "Anna"}'

    response = await client.post(
        MESSAGES, content=body.encode(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json() == {"error": "text: must be valid Unicode text"}
    assert await count(db, MessageLog) == 0


async def test_storage_down_is_a_503_with_a_readable_error(clock: ManualClock) -> None:
    nowhere = Database("postgresql+asyncpg://concierge@127.0.0.1:1/none")
    engine = Engine(nowhere, clock, Settings(_env_file=None))
    transport = httpx.ASGITransport(app=create_app(engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(MESSAGES, json={"session": "s", "text": "hi"})
    finally:
        await nowhere.dispose()

    assert response.status_code == 503
    assert response.json() == {"error": "The assistant is briefly unavailable; please try again."}


async def test_the_page_health_check_and_api_docs_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="static/chat.js"' in page.text
    assert "//" not in page.text  # every file comes from this app, nothing from a CDN
    for asset in ("/static/chat.js", "/static/chat.css"):
        assert (await client.get(asset)).status_code == 200

    assert (await client.get("/healthz")).json() == {"status": "ok"}

    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"][MESSAGES]["post"]
    assert {"200", "422", "503"} <= set(operation["responses"])


_sessions = itertools.count()
_TRICKY = "\x00\x07\x1b\x7f\n\r\t\u200b\u200e\u202e\ufeff\u0344😀🎉🚗👨\u200d👩\u200d👧中文"
_TEXTS = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(_TRICKY)), max_size=10_000)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=_TEXTS, name=st.none() | st.text(st.characters(codec="utf-8"), max_size=200))
@example(text="😀" * 10_000, name="\u0344" * 200)
@example(text="\x00" * 10_000, name="\x00")
async def test_any_text_up_to_10000_characters_gets_an_answer(
    client: httpx.AsyncClient, text: str, name: str | None
) -> None:
    # The database outlives the examples, so each example is a new visitor.
    body = {"session": f"h-{next(_sessions)}", "text": text, "display_name": name}

    response = await client.post(MESSAGES, json=body)
    assert response.status_code == 200, response.text
    replies = response.json()["replies"]
    assert replies
    assert all(isinstance(reply["text"], str) and reply["text"] for reply in replies)
