"""Small talk: hello, thanks and goodbye are answered briefly and never sent to the FAQ."""

from __future__ import annotations

import re

from dialogs.texts import t
from dialogs.types import Outcome, Reply, Turn

_PATTERNS: dict[str, re.Pattern[str]] = {
    "hello": re.compile(
        r"^(hi|hello|hey|hiya|good (morning|afternoon|evening)|greetings|"
        r"你好|您好|嗨|哈喽|早上好|下午好|晚上好|在吗)(\s+there)?$",
        re.IGNORECASE,
    ),
    "thanks": re.compile(
        r"^(thanks?( you)?( very much| so much| a lot)?|thx|ty|cheers|"
        r"谢谢(你|您)?|多谢|感谢|谢啦)$",
        re.IGNORECASE,
    ),
    "bye": re.compile(
        r"^(bye|goodbye|bye bye|see you|see ya|good night|再见|拜拜|晚安)$", re.IGNORECASE
    ),
}
_TRAILING = re.compile(r"[\s!.?,~。！？，～😊🙂👋🙏]+$")


def small_talk_kind(text: str) -> str | None:
    """'hello', 'thanks' or 'bye' when the whole message is just that, else None."""
    core = _TRAILING.sub("", text.strip())
    return next((kind for kind, pattern in _PATTERNS.items() if pattern.match(core)), None)


def answer(turn: Turn) -> Outcome | None:
    kind = small_talk_kind(turn.text)
    if kind is None:
        return None
    name = turn.customer.salutation
    key = "smalltalk.hello_named" if kind == "hello" and name else f"smalltalk.{kind}"
    return Outcome(replies=(Reply(t(turn.language, key, name=name)),), intent=f"smalltalk.{kind}")
