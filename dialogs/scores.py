"""Reading a 1-5 score out of what a customer writes, in English or Chinese.

Customers answer "how did we do?" with a button, a digit, "4/5", "5 stars", "★★★★", "五星",
"非常满意", a word or an emoji. Only a message that *is* a score counts: a number inside a
longer sentence ("I have 2 questions") is not one, and neither is anything outside 1..5.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from dialogs.cleaning import fold
from dialogs.texts import t
from dialogs.types import LANGUAGES

_WORDS: dict[str, int] = {
    "excellent": 5, "great": 5, "perfect": 5, "amazing": 5, "outstanding": 5, "fantastic": 5,
    "superb": 5, "awesome": 5, "brilliant": 5, "very good": 5, "very satisfied": 5,
    "good": 4, "pretty good": 4, "quite good": 4, "satisfied": 4, "nice": 4, "not bad": 4,
    "ok": 3, "okay": 3, "average": 3, "fair": 3, "so-so": 3, "so so": 3, "alright": 3,
    "mediocre": 3, "meh": 3, "neutral": 3,
    "bad": 2, "poor": 2, "not good": 2, "dissatisfied": 2, "unsatisfied": 2,
    "disappointing": 2, "disappointed": 2,
    "terrible": 1, "awful": 1, "horrible": 1, "very bad": 1, "very poor": 1, "worst": 1,
    "the worst": 1, "very dissatisfied": 1,
    "非常满意": 5, "很满意": 5, "十分满意": 5, "特别满意": 5, "超级满意": 5, "非常好": 5,
    "太棒": 5, "太棒了": 5, "很棒": 5, "满分": 5, "好评": 5, "五星好评": 5,
    "满意": 4, "比较满意": 4, "挺满意": 4, "还算满意": 4, "不错": 4, "还不错": 4, "挺好": 4,
    "很好": 4, "比较好": 4,
    "一般": 3, "一般般": 3, "还行": 3, "还可以": 3, "凑合": 3, "马马虎虎": 3, "中规中矩": 3,
    "不满意": 2, "不太满意": 2, "不好": 2, "不太好": 2, "差": 2, "较差": 2, "比较差": 2,
    "失望": 2, "有点失望": 2,
    "非常不满意": 1, "很不满意": 1, "特别不满意": 1, "十分不满意": 1, "很差": 1, "太差": 1,
    "太差了": 1, "非常差": 1, "极差": 1, "糟糕": 1, "很糟糕": 1, "太糟糕": 1, "太糟糕了": 1,
    "差评": 1, "非常失望": 1,
}  # fmt: skip
_EMOJI: dict[str, int] = {
    "😍": 5, "🤩": 5, "🥰": 5, "😀": 4, "😃": 4, "😄": 4, "😊": 4, "🙂": 4, "👍": 4,
    "😐": 3, "😑": 3, "😶": 3, "🙁": 2, "☹": 2, "😕": 2, "😞": 2, "👎": 2, "😡": 1, "😠": 1,
    "🤬": 1,
}  # fmt: skip
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_CHINESE_NUMBERS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}

_NUMBER = re.compile(
    r"^(?P<n>\d{1,3}|one|two|three|four|five|[一二两三四五])\s*"
    r"(?P<unit>(?:/|out of|of)\s*(?:5|five)(?:\s*stars?)?|stars?|⭐+|★|颗星|个星|星好评|星|分)?$"
)
_NUMBER_AND_LABEL = re.compile(r"^(?P<n>[1-5])\s*(?:⭐+|★)?\s*[-–—:,、]?\s*(?P<label>\D+)$")
_STARS = re.compile(r"^[⭐★]{1,5}[☆]*$")
_PREFIX = re.compile(
    r"^(?:i(?:'d| would)? (?:give|rate)(?: (?:it|you|you guys|them|this|us))?(?: an?)? "
    r"|my (?:rating|score) is |(?:rating|score) ?: ?|(?:我)?(?:给|打)(?:你们|你|个)?打?)"
)
_THANKS = re.compile(
    r"[\s,，!！.。~～]*(?:thanks?(?: you)?(?: very much| so much)?|thx|谢谢(?:你们|你|您)?|多谢)$"
)
_PARTICLES = re.compile(r"(?<=.)[了啊呀哦吧的]+$")
_IGNORED = re.compile("[\ufe0f\u200d\U0001f3fb-\U0001f3ff]")  # emoji variation, skin tones

_DECLINE_WHOLE = re.compile(
    r"^(no,? thanks?|no,? thank you|nah|not now|not interested|no rating|i'?d rather not"
    r"|rather not|prefer not to (say|answer|rate)|skip|pass|不用了?|不必了?|算了吧?|没空|跳过)$"
)
_DECLINE_ANYWHERE = re.compile(
    r"^(please )?(don'?t|do not|stop) ask(ing)?\b|\bi don'?t want to (rate|answer)\b"
    r"|不想(评价|评分|打分|回答)|不(评价|打分)|(别|不要)(再)?问|(别|不要)再(发|打扰)"
)
_SKIP = {"skip", "pass", "跳过", "略过"}
_ACKNOWLEDGEMENTS = {"ok", "okay", "alright", "好", "好的"}


def _normal(text: str) -> str:
    """Full-width digits and punctuation made ASCII, case and end punctuation folded."""
    folded = fold(_IGNORED.sub("", unicodedata.normalize("NFKC", text)))
    return re.sub(r"\s+", " ", folded)


@cache
def _buttons() -> dict[str, int]:
    return {
        _normal(t(lang, f"rating.button_{score}")): score
        for lang in LANGUAGES
        for score in range(1, 6)
    }


def parse_score(text: str) -> int | None:
    """The 1-5 score a message clearly is, else None."""
    normal = _normal(text)
    if (button := _buttons().get(normal)) is not None:
        return button
    unthanked = fold(_THANKS.sub("", normal))
    if unthanked != normal and unthanked in _ACKNOWLEDGEMENTS:
        return None  # "ok, thanks" acknowledges an answer; it is not a rating of 3
    core = fold(_PREFIX.sub("", unthanked))
    score = _score_of(core)
    return score if score is not None and 1 <= score <= 5 else None


def _score_of(core: str) -> int | None:
    if not core:
        return None
    if (word := _WORDS.get(core, _WORDS.get(_PARTICLES.sub("", core)))) is not None:
        return word
    if _STARS.match(core):
        return sum(ch in "⭐★" for ch in core)
    emoji = {_EMOJI.get(ch) for ch in core.replace(" ", "")}
    if len(emoji) == 1 and None not in emoji and len(core) <= 5:
        return emoji.pop()
    if match := _NUMBER.match(core):
        n, unit = match["n"], match["unit"]
        if n in _CHINESE_NUMBERS:
            return _CHINESE_NUMBERS[n] if unit else None  # "五" alone is not a score, "五星" is
        return _NUMBER_WORDS.get(n) or int(n)
    if match := _NUMBER_AND_LABEL.match(core):
        n, label = int(match["n"]), _WORDS.get(match["label"].strip())
        return n if label == n else None  # "5 excellent" yes, "5 terrible" is unclear
    return None


def is_decline(text: str) -> bool:
    """The customer does not want to rate: "no thanks", "don't ask", "不用了", "不想评价"."""
    normal = _normal(text)
    return bool(_DECLINE_WHOLE.match(normal) or _DECLINE_ANYWHERE.search(normal))


def is_skip(text: str) -> bool:
    """The "Skip" button of a detail question, or the word."""
    labels = {_normal(t(lang, "rating.skip_button")) for lang in LANGUAGES}
    return _normal(text) in labels | _SKIP
