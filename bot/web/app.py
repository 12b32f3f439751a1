"""The web chat: the page a visitor meets first, and the JSON API behind it.

`create_app(engine)` builds a FastAPI application that serves the chat page and its static
files from this package (nothing from a CDN: the page works offline) and answers
`POST /api/chat/messages` through the same `Engine` every channel uses. Errors leave as short
JSON bodies, `{"error": "..."}`, naming the field and what is allowed, so a client can show
them as they are; the OpenAPI schema at /docs describes the API for other programs. The
business API for the business's own systems (`bot.web.api`) is mounted on the same app.
"""

from __future__ import annotations

import html
import logging
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.channels.web_inbox import unread
from bot.engine import Engine
from bot.storage.database import StorageUnavailableError
from bot.web import api, api_models
from dialogs.cleaning import MAX_TEXT_LENGTH, clean_text
from dialogs.types import Inbound

log = logging.getLogger(__name__)

CHANNEL = "web"
MAX_DISPLAY_NAME_LENGTH = 200
_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
UNAVAILABLE = "The assistant is briefly unavailable; please try again."

# What each field accepts, in words: the 422 body says this instead of pydantic's jargon.
ALLOWED: dict[str, str] = {
    "session": "1 to 128 characters of letters, digits and _ . : -",
    "text": f"a string of at most {MAX_TEXT_LENGTH} characters",
    "display_name": f"a string of at most {MAX_DISPLAY_NAME_LENGTH} characters, or null",
    "language": '"en" or "zh", or null',
    "message_id": "1 to 128 characters of letters, digits and _ . : -, or null",
    "after": "a whole number, 0 or more",
}

Identifier = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]


class ChatMessage(BaseModel):
    """One message a visitor typed into the web chat."""

    session: Identifier = Field(
        description="The visitor's id, kept by the browser: the same id is the same customer.",
        examples=["3f0c7a52-8d8e-4a8f-9a57-0f8f0b6f4c11"],
    )
    text: str = Field(
        max_length=MAX_TEXT_LENGTH,
        description="What the visitor wrote; an empty string is answered with a hint.",
        examples=["Hello"],
    )
    display_name: str | None = Field(
        None,
        max_length=MAX_DISPLAY_NAME_LENGTH,
        description="A name the page already knows; offered as the way to address the visitor.",
    )
    language: Literal["en", "zh"] | None = Field(
        None, description="The browser's language, a hint for a visitor's first message."
    )
    message_id: Identifier | None = Field(
        None,
        description="The client's id of this message: a retry with the same id is answered "
        "with the first replies and handled only once.",
    )


class ReplyOut(BaseModel):
    """Something the bot says; `buttons` are quick replies whose text can be sent back."""

    text: str
    buttons: list[str] = Field(default_factory=list)


class ChatAnswer(BaseModel):
    """The bot's replies to one message, in order."""

    replies: list[ReplyOut]


class InboxItem(BaseModel):
    """A message the bot sent on its own, e.g. a staff member's answer or a reminder."""

    id: int
    text: str
    buttons: list[str] = Field(default_factory=list)


class Inbox(BaseModel):
    """New messages for the visitor, oldest first; ask again with `after` = the last id."""

    messages: list[InboxItem]


class ErrorBody(BaseModel):
    """Why a request was refused, in one short sentence."""

    error: str = Field(examples=["text: must be a string of at most 10000 characters"])


def _problem(error: dict[str, Any]) -> str:
    """One validation problem in plain words: the field, then what it accepts."""
    kind = error.get("type", "")
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    if kind == "json_invalid":
        reason, at = (error.get("ctx") or {}).get("error"), error.get("loc", ())[-1:]
        where = f" at character {at[0]}" if at and isinstance(at[0], int) else ""
        return f"body: malformed JSON ({reason}{where})" if reason else "body: malformed JSON"
    if not location or kind in {"model_attributes_type", "dict_type"}:
        return "body: must be a JSON object with session and text, sent as application/json"
    field = location[0]
    if field not in ALLOWED:
        return f"{'.'.join(location)}: {error.get('msg', 'invalid')}"
    if kind == "missing":
        return f"{field}: required, {ALLOWED[field]}"
    if kind == "string_unicode":  # half of a UTF-16 pair, escaped in the JSON
        return f"{field}: must be valid Unicode text"
    return f"{field}: must be {ALLOWED[field]}"


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The business API has fields of its own, worded by its models module.
    words = api_models.describe if request.url.path.startswith(api.PATHS) else _problem
    problems = list(dict.fromkeys(words(error) for error in exc.errors()))
    return JSONResponse({"error": "; ".join(problems)}, status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def _storage_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("web chat: %s", exc)
    # The message was not handled; the page keeps the text so the visitor can send it again.
    return JSONResponse({"error": UNAVAILABLE}, status_code=503, headers={"Retry-After": "5"})


@cache
def _page_template() -> str:
    return resources.files("bot.web").joinpath("static", "index.html").read_text("utf-8")


# The page loads only its own files; nothing inline, nothing from elsewhere.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Always revalidate, so a new version of the bot is never paired with an old page.
    "Cache-Control": "no-cache",
}


def _display_name(raw: str | None) -> str | None:
    """The name as it may be stored: control characters out, on one line; None when empty."""
    if raw is None:
        return None
    # Cut after cleaning: NFC normalisation can lengthen a text, and the column holds 200.
    return " ".join(clean_text(raw).split())[:MAX_DISPLAY_NAME_LENGTH] or None


def create_app(engine: Engine) -> FastAPI:
    """The web chat application, answering through `engine`."""
    app = FastAPI(
        title=f"{engine.settings.business_name} web chat",
        summary="Talk to the service assistant over HTTP.",
        version="1",
    )
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StorageUnavailableError, _storage_unavailable)
    app.mount(
        "/static", StaticFiles(packages=[("bot.web", "static")], follow_symlink=False), "static"
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        business = html.escape(engine.settings.business_name, quote=True)
        page = _page_template().replace("{{business_name}}", business)
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the web app is up."""
        return {"status": "ok"}

    @app.post(
        "/api/chat/messages",
        tags=["chat"],
        responses={
            422: {"model": ErrorBody, "description": "The request is malformed."},
            503: {"model": ErrorBody, "description": "Storage is down; retry shortly."},
        },
    )
    async def post_message(message: ChatMessage) -> ChatAnswer:
        """Send one visitor message; get the bot's replies."""
        replies = await engine.handle(
            Inbound(
                channel=CHANNEL,
                external_user_id=message.session,
                chat_id=message.session,
                text=message.text,
                received_at=engine.clock.now(),
                display_name=_display_name(message.display_name),
                language_hint=message.language,
                message_id=message.message_id,
            )
        )
        # The web has no phone sharing, so a reply's contact button is left out.
        return ChatAnswer(
            replies=[ReplyOut(text=reply.text, buttons=list(reply.buttons)) for reply in replies]
        )

    @app.get(
        "/api/chat/inbox",
        tags=["chat"],
        responses={
            422: {"model": ErrorBody, "description": "The request is malformed."},
            503: {"model": ErrorBody, "description": "Storage is down; retry shortly."},
        },
    )
    async def inbox(
        session: Annotated[str, Query(pattern=_ID_PATTERN, description="The visitor's id.")],
        after: Annotated[int, Query(ge=0, description="The last message id already shown.")] = 0,
    ) -> Inbox:
        """Messages the bot sent the visitor on its own since `after` (staff answers etc.)."""
        try:
            found = await unread(engine.database, session, after)
        except (SQLAlchemyError, OSError) as error:
            raise StorageUnavailableError(str(error)) from error
        return Inbox(
            messages=[InboxItem(id=m.id, text=m.text, buttons=list(m.buttons)) for m in found]
        )

    app.include_router(api.business_api(engine))
    return app
