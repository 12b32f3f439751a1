"""Marketing consent in chat: /stop and plain words opt out of marketing, /start opts back in.

Opting out is recorded apart from the consent on file (an import's "marketing_consent"), so
/start after /stop restores what was there; /start never grants consent by itself, because
Telegram sends it whenever someone opens the bot. The dispatcher's contact policy reads both.
"""

from __future__ import annotations

import re

from dialogs.cleaning import fold
from dialogs.texts import t
from dialogs.types import Outcome, Reply, SetMarketingOptOut, Turn

_STOP_PHRASES = re.compile(
    r"^(stop|stop it|unsubscribe|opt out|opt-out|停|停止|退订)$"
    r"|\b(stop|quit|no more|don'?t (send|text|message))\b.{0,20}"
    r"\b(sending|messages?|texts?|offers?|promotions?|marketing|ads|newsletters?|spam|texting|me)\b"
    r"|\bunsubscribe\b|\bopt[ -]?out\b"
    r"|退订|取消订阅|停止(发送|推送)|(不要|别|不用)再(给我)?(发|推送)"
    r"|(不要|别)(给我)?(发|推送)(消息|信息|广告|短信|了)",  # not 不要发票, "no invoice"
    re.IGNORECASE,
)


def asks_to_stop(text: str) -> bool:
    """Plain-words requests to stop marketing messages, in English or Chinese."""
    return bool(_STOP_PHRASES.search(fold(text)))


def stop(turn: Turn) -> Outcome:
    """Opt the customer out of marketing (offers, news, greetings); reminders still come."""
    key = "consent.already_opted_out" if turn.customer.marketing_opted_out else "consent.opted_out"
    return Outcome(
        replies=(Reply(t(turn.language, key)),),
        effects=(SetMarketingOptOut(True),),
        intent="consent.opt_out",
    )


def stop_request(turn: Turn) -> Outcome | None:
    """The route for plain words: "stop sending me messages", "退订", "不要再发了"."""
    return stop(turn) if asks_to_stop(turn.text) else None


def resume(turn: Turn) -> Outcome:
    """What /start adds to its hello: marketing resumes, confirmed if they had opted out.

    The effect is always given (it is idempotent), so a customer is opted back in even when
    the snapshot the dialog sees does not say that they had opted out.
    """
    replies = (Reply(t(turn.language, "consent.opted_in")),)
    return Outcome(
        replies=replies if turn.customer.marketing_opted_out else (),
        effects=(SetMarketingOptOut(False),),
        intent="consent.opt_in" if turn.customer.marketing_opted_out else "consent.unchanged",
    )
