"""A fake Telegram Bot API server on 127.0.0.1, for driving the real client libraries in tests.

It owns the server side of the Bot API as far as Concierge uses it: the update queue with real
getUpdates offset semantics (an update is forgotten only once a later offset confirms it) and
a long poll capped at `LONG_POLL_CAP` seconds, sendMessage with Telegram's length rules,
scriptable failures in Telegram's own error shape, and a record of every call. Optionally it
enforces Telegram's flood limits (`TelegramLimits`: about 30 messages a second overall, one a
second per private chat, 20 a minute per group) by answering 429 with retry_after, and holds
each sendMessage answer for `send_delay` seconds to stand in for a slow network. For the staff
group it pushes group messages (replies to the bot's posts) and button presses, records replies
(`reply_parameters`), inline keyboards and answerCallbackQuery calls. Requests are
parsed the way Telegram reads them: query string, form or multipart fields (where clients
JSON-encode every non-string value) or a JSON body. The `telegram_api` fixture serves one
fresh server per test with uvicorn inside the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import json
import math
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "123456789:TEST-fake-token"
BOT_USER: dict[str, Any] = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Concierge",
    "username": "concierge_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
LONG_POLL_CAP = 0.5  # seconds: a long poll ends this early, so tests stay fast
WAIT_LIMIT = 5.0  # seconds wait_until waits before failing the test
# Telegram documents "4096 characters"; a live probe found it counts code points, not UTF-16
# units (github.com/FerroxLabs/wayland/issues/934), so the fake is no stricter than that.
MAX_TEXT_LENGTH = 4096
# Fields that are free text: a form value like "123" or "true" must stay a string there.
_TEXT_FIELDS = frozenset(
    {"text", "caption", "description", "short_description", "name", "title", "url",
     "secret_token", "parse_mode", "phone_number", "first_name", "last_name", "language_code"}
)  # fmt: skip
_DEFAULT_ERRORS = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass(frozen=True, slots=True)
class TelegramLimits:
    """Telegram's documented flood limits for sendMessage; exceeding one answers 429."""

    per_second: int = 30
    chat_per_second: int = 1
    group_per_minute: int = 20


class _Window:
    """Times of accepted messages within the last `seconds` (a sliding window)."""

    def __init__(self, seconds: float, limit: int) -> None:
        self.seconds, self.limit = seconds, limit
        self.times: deque[float] = deque()

    def retry_after(self, now: float) -> int | None:
        """None if one more message fits now, else whole seconds until one does (at least 1)."""
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        if len(self.times) < self.limit:
            return None
        return max(1, math.ceil(self.times[0] + self.seconds - now))


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request the server received: method name as sent, parameters decoded."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the bot delivered through sendMessage."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    reply_to: int | None = None  # the message this one replies to

    @property
    def inline_buttons(self) -> list[dict[str, Any]]:
        """Inline-keyboard buttons ({"text", "callback_data"}), row after row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Reply-keyboard buttons, row after row; a plain-string button becomes {"text": ...}."""
        rows = (self.reply_markup or {}).get("keyboard", [])
        return [b if isinstance(b, dict) else {"text": b} for row in rows for b in row]

    @property
    def button_texts(self) -> list[str]:
        return [button["text"] for button in self.buttons]


class ApiError(Exception):
    """Answered as Telegram's error object: {"ok": false, "error_code", "description", ...}."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return JSONResponse(body, status_code=self.status)


class FakeTelegramAPI:
    """The fake server's state and its Starlette app; `running()` serves it on a free port."""

    def __init__(
        self,
        token: str = TOKEN,
        long_poll_cap: float = LONG_POLL_CAP,
        limits: TelegramLimits | None = None,
        send_delay: float = 0.0,
    ) -> None:
        self.token = token
        self.long_poll_cap = long_poll_cap
        self.limits = limits  # None: no flood limits (the default, for most tests)
        self.send_delay = send_delay  # seconds each sendMessage answer is held back
        self.rate_limited = 0  # 429 answers given for flood limits
        self._overall: _Window | None = None
        self._chat_windows: dict[int, _Window] = {}
        self.url = ""  # the server root, e.g. "http://127.0.0.1:PORT"; set by running()
        self.pending: list[dict[str, Any]] = []  # updates not yet confirmed, oldest first
        self.confirmed_offset = 0  # the highest getUpdates offset received so far
        self.sent: list[SentMessage] = []
        self.calls: list[ApiCall] = []
        self.commands: list[dict[str, Any]] = []
        self.button_answers: list[dict[str, Any]] = []  # answerCallbackQuery parameters
        self.webhook_url = ""
        self._failures: dict[tuple[str, int | None], deque[ApiError | None]] = {}
        self._update_ids = itertools.count(10_001)
        self._message_ids = itertools.count(1)
        self._arrived = asyncio.Event()
        self._changed = asyncio.Event()
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "answercallbackquery": self._answer_callback_query,
        }
        self.app = Starlette(
            routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])]
        )

    # --- what tests call

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update (an update_id is assigned if missing); returns it."""
        update.setdefault("update_id", next(self._update_ids))
        self.pending.append(update)
        self._arrived.set()
        return update

    def push_message(
        self,
        user_id: int,
        *,
        first_name: str = "Test",
        last_name: str | None = None,
        language_code: str | None = "en",
        chat_id: int | None = None,
        chat_type: str = "private",
        **content: Any,
    ) -> dict[str, Any]:
        """Queue a message from `user_id` with `content` fields (text=..., sticker=..., ...)."""
        sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name is not None:
            sender["last_name"] = last_name
        if language_code is not None:
            sender["language_code"] = language_code
        chat: dict[str, Any] = {"id": user_id if chat_id is None else chat_id, "type": chat_type}
        chat |= {"first_name": first_name} if chat_type == "private" else {"title": "Group"}
        message: dict[str, Any] = {"message_id": next(self._message_ids), "chat": chat}
        message |= {"date": int(time.time()), "from": sender, **content}
        return self.push_update({"message": message})

    def push_group_text(
        self, user_id: int, chat_id: int, text: str, *, reply_to: int | None = None, **sender: Any
    ) -> dict[str, Any]:
        """A message in the (super)group `chat_id`, replying to message `reply_to` if given."""
        content: dict[str, Any] = {"text": text}
        if reply_to is not None:
            content["reply_to_message"] = self._message_dict(reply_to, chat_id)
        return self.push_message(
            user_id, chat_id=chat_id, chat_type="supergroup", **content, **sender
        )

    def push_button(
        self, user_id: int, message_id: int, data: str, *, first_name: str = "Test"
    ) -> dict[str, Any]:
        """A press on an inline button with `data` under the bot's message `message_id`."""
        sent = next(m for m in self.sent if m.message_id == message_id)
        query = {
            "id": f"q{next(self._update_ids)}",
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "chat_instance": f"ci{sent.chat_id}",
            "data": data,
            "message": self._message_dict(message_id, sent.chat_id),
        }
        return self.push_update({"callback_query": query})

    def _message_dict(self, message_id: int, chat_id: int) -> dict[str, Any]:
        """The bot's message `message_id` as an update carries it (a stub if never sent)."""
        sent = next((m for m in self.sent if m.message_id == message_id), None)
        chat = {"id": chat_id, "type": "supergroup" if chat_id < 0 else "private"}
        chat |= {"title": "Group"} if chat_id < 0 else {"first_name": "Test"}
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time())}
        message |= {"chat": chat, "from": BOT_USER, "text": sent.text if sent else ""}
        if sent is not None and sent.reply_markup is not None:
            message["reply_markup"] = sent.reply_markup
        return message

    def push_text(self, user_id: int, text: str, **sender: Any) -> dict[str, Any]:
        return self.push_message(user_id, text=text, **sender)

    def push_contact(
        self,
        user_id: int,
        phone: str,
        *,
        contact_user_id: int | Literal["sender"] | None = "sender",
        contact_first_name: str = "Contact",
        **sender: Any,
    ) -> dict[str, Any]:
        """A contact card; by default the sender's own, as the "share my phone" button sends.

        `contact_user_id=None` is a card of someone without a Telegram account.
        """
        contact: dict[str, Any] = {"phone_number": phone, "first_name": contact_first_name}
        if contact_user_id is not None:
            contact["user_id"] = user_id if contact_user_id == "sender" else contact_user_id
        return self.push_message(user_id, contact=contact, **sender)

    def push_sticker(self, user_id: int, **sender: Any) -> dict[str, Any]:
        sticker: dict[str, Any] = {"file_id": "sticker-1", "file_unique_id": "s1"}
        sticker["type"] = "regular"
        sticker |= {"width": 512, "height": 512, "is_animated": False, "is_video": False}
        return self.push_message(user_id, sticker=sticker, **sender)

    def push_photo(self, user_id: int, caption: str | None = None, **sender: Any) -> dict[str, Any]:
        sizes = [
            {"file_id": f"photo-{w}", "file_unique_id": f"p{w}", "width": w, "height": w}
            for w in (90, 800)
        ]
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        return self.push_message(user_id, **content, **sender)

    def fail_next(
        self,
        chat_id: int | None = None,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
        after: int = 0,
        method: str = "sendMessage",
    ) -> None:
        """Make `times` calls of `method` (to `chat_id`, or any chat) fail, `after` others."""
        if status == 429 and retry_after is None:
            retry_after = 3
        text = description or _DEFAULT_ERRORS.get(status, "Error")
        failure = ApiError(status, text.format(retry_after=retry_after), retry_after)
        queue = self._failures.setdefault((method.lower(), chat_id), deque())
        queue.extend([None] * after + [failure] * times)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds, checked after every request (for a bot running on
        its own); fails after WAIT_LIMIT seconds."""
        async with asyncio.timeout(WAIT_LIMIT):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return [message for message in self.sent if message.chat_id == chat_id]

    def calls_of(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeTelegramAPI]:
        """Serve on a free port of 127.0.0.1 for the duration of the block."""
        # IPPROTO_TCP spelled out: asyncio turns Nagle's algorithm off only on sockets that say
        # so, and with it on every answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        server = _TestServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error here
            await asyncio.sleep(0.005)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
            yield self
        finally:
            server.should_exit = True
            await task

    # --- the HTTP side

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params = await _params(request)
        self.calls.append(ApiCall(method, params))
        try:
            if request.path_params["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = self._handlers.get(method.lower())  # method names ignore case
            if handler is None:
                raise ApiError(404, "Not Found")
            self._maybe_fail(method, params)
            result = await handler(params)
        except ApiError as error:
            return error.response()
        finally:
            self._changed.set()
        return JSONResponse({"ok": True, "result": result})

    def _maybe_fail(self, method: str, params: dict[str, Any]) -> None:
        for key in ((method.lower(), params.get("chat_id")), (method.lower(), None)):
            if queue := self._failures.get(key):
                if failure := queue.popleft():  # None lets one call through
                    raise failure
                return

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return BOT_USER

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self._confirm(int(params.get("offset") or 0))
        self._changed.set()
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = float(params.get("timeout") or 0)
        if not self.pending and timeout > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(timeout, self.long_poll_cap))
        return self.pending[:limit]

    def _confirm(self, offset: int) -> None:
        """Forget updates below `offset`; a negative offset keeps only the last -offset ones."""
        if offset < 0:
            kept = self.pending[offset:]
            offset = kept[0]["update_id"] if kept else self.confirmed_offset
        if offset > 0:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params.get("text", ""))
        if "chat_id" not in params:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        chat_id = int(params["chat_id"])
        self._check_flood(chat_id)
        markup = params.get("reply_markup")
        replying = params.get("reply_parameters") or {}
        reply_to = replying.get("message_id") if isinstance(replying, dict) else None
        reply_to = reply_to or params.get("reply_to_message_id")
        sent = SentMessage(next(self._message_ids), chat_id, text, markup, reply_to)
        self.sent.append(sent)
        if self.send_delay:
            await asyncio.sleep(self.send_delay)  # delivered; the answer is on its way
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
        return {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": BOT_USER,
            "text": text,
        }

    def _check_flood(self, chat_id: int) -> None:
        """Answer 429 when this message would break a flood limit; else count it."""
        if self.limits is None:
            return
        now = time.monotonic()
        if self._overall is None:
            self._overall = _Window(1.0, self.limits.per_second)
        chat = self._chat_windows.get(chat_id)
        if chat is None:
            group = chat_id < 0
            chat = _Window(60.0 if group else 1.0, self.limits.group_per_minute if group
                           else self.limits.chat_per_second)  # fmt: skip
            self._chat_windows[chat_id] = chat
        waits = [w for w in (self._overall.retry_after(now), chat.retry_after(now)) if w]
        if waits:
            self.rate_limited += 1
            wait = max(waits)
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        self._overall.times.append(now)
        chat.times.append(now)

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") is True:
            self.pending.clear()
        self.webhook_url = ""
        return True

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = str(params.get("url", ""))
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands = list(params.get("commands") or [])
        return True

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        if "callback_query_id" not in params:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        self.button_answers.append(params)
        return True


class _TestServer(uvicorn.Server):
    """uvicorn without signal handlers: Ctrl-C belongs to pytest, not to the fake server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _params(request: Request) -> dict[str, Any]:
    """Query, form, multipart or JSON parameters; JSON-encoded form values decoded."""
    fields: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and content_type.startswith("application/json"):
        typed: dict[str, Any] = json.loads(body)  # JSON bodies carry their own types
        return {name: _decode(name, value) for name, value in fields.items()} | typed
    if body and content_type.startswith("multipart/form-data"):
        fields |= _multipart(content_type, body)
    elif body:
        fields |= dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return {name: _decode(name, value) for name, value in fields.items()}


def _multipart(content_type: str, body: bytes) -> dict[str, str | bytes]:
    """Multipart fields by the standard library's MIME parser; file parts stay bytes."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str | bytes] = {}
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if part.is_multipart() or not isinstance(payload, bytes):
            continue
        name = str(part.get_param("name", header="content-disposition"))
        fields[name] = payload if part.get_filename() else payload.decode("utf-8")
    return fields


def _decode(name: str, value: Any) -> Any:
    # Clients send strings as they are and JSON-encode everything else (ids, markup, lists).
    if not isinstance(value, str) or name in _TEXT_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegramAPI]:
    """A fresh fake Bot API server for one test; `.url` is its root, `.token` the bot token."""
    api = FakeTelegramAPI()
    async with api.running():
        yield api
