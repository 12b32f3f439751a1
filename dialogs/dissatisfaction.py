"""Complaints and requests for a person, recognised in English and Chinese text.

Owns the rules that read the lexicon in `dialogs.dissatisfaction_lexicon`. A message is cut into
clauses; each lexicon entry found in a clause is a cue with a weight. A cue preceded by an odd
number of negators ("not", "no", "不", "没") is flipped: "no complaints" and "不生气" count for
nothing, while praise counts only when negated ("not happy", "不太满意"; "不是不满意" has two
negators and does not). Weak hints ("again", "??", "又") count only together. The weights of a
message's cues combine like independent probabilities into a strength; 0.5 or more is a
`Signal`. Its kind is "complaint" whenever the complaint cues alone are enough, so "can I talk
to someone about a complaint?" is a complaint; /human is always "human".

Many complaints only state a failure ("the new battery died after 3 days") and carry no cue.
`assess` then asks an optional `ComplaintModel` (a classifier over sentence embeddings, built
by the runtime from `knowledge.complaints`; this module never loads one) unless the words
rule a complaint out ("not complaining, just asking ...").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from dialogs.cleaning import clean_text
from dialogs.dissatisfaction_lexicon import (
    ANGER,
    COMPLAINT_WORDS,
    DISSATISFACTION,
    FILLERS,
    HINTS,
    HUMAN,
    HUMAN_HINTS,
    INTENSIFIERS,
    LEGAL,
    MONEY,
    NEGATORS,
    PRAISE,
    SAFETY_FAILURES,
    SAFETY_WORDS,
)

Kind = Literal["human", "complaint"]
Source = Literal["lexicon", "model"]
Concern = Literal["safety", "legal", "money"]
THRESHOLD: Final = 0.5
# A question the lexicon does not flag is nearly always one for the FAQ ("how much is an oil
# change?"); the model reads the topic, so it must be nearly sure before a question is a complaint.
QUESTION_FLOOR: Final = 0.9
STRONG: Final = 0.9  # a complaint at least this strong is angry enough to be urgent

SCOPE_CHARS: Final = 60  # how far before a cue a negator is looked for
_ZH_INTENSIFIERS: Final = tuple(w for w in INTENSIFIERS if not w.isascii())
_ZH_SCOPE_WORDS: Final = sorted(
    (w for w in NEGATORS | FILLERS if not w.isascii()), key=len, reverse=True
)  # longest first, so that "无法" is seen before "法" could be


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: Kind
    weight: float
    pattern: re.Pattern[str]
    praise: bool = False
    concern: Concern | None = None


def _entries(
    kind: Kind,
    weight: float,
    patterns: tuple[str, ...],
    *,
    praise: bool = False,
    concern: Concern | None = None,
) -> list[_Entry]:
    return [_Entry(kind, weight, re.compile(p), praise, concern) for p in patterns]


_LEXICON: Final = [
    *_entries("human", 0.9, HUMAN),
    *_entries("human", 0.4, HUMAN_HINTS),
    *_entries("complaint", 0.8, COMPLAINT_WORDS),
    *_entries("complaint", 0.8, LEGAL, concern="legal"),
    *_entries("complaint", 0.8, ANGER),
    *_entries("complaint", 0.6, DISSATISFACTION),
    *_entries("complaint", 0.6, MONEY, concern="money"),
    *_entries("complaint", 0.6, SAFETY_FAILURES, concern="safety"),
    *_entries("complaint", 0.4, SAFETY_WORDS, concern="safety"),
    *_entries("complaint", 0.6, PRAISE, praise=True),
    *_entries("complaint", 0.3, HINTS),
]
_A_NOT_A: Final = re.compile(r"([^\W\d_a-z])[不没]\1$")
_HEAT: Final = _Entry("complaint", 0.3, re.compile(r"[!?]{2,}"))  # "!!", "??", or SHOUTING
_COMMAND = re.compile(r"^/human(@\w+)?(\s|$)")
_CLAUSE = re.compile(r"[^,.;:!?。，；：、\n]+[,.;:!?。，；：、\n]*")
_CONTRAST = re.compile(r"\s+(?:but|however|although|though)\s+|但是|可是")
_PUNCT_END = " ,.;:!?。，；：、\n"
_RHETORICAL = re.compile(  # "isn't this a scam?", "这不是欺骗吗": the negation affirms
    r"^\s*(isn't|aren't|wasn't|weren't|don't|doesn't|didn't)\b.*\?|不是.*吗|难道"
)
_QUESTION = re.compile(
    r"[?？]|^(how|what|when|where|which|who|why|is|are|am|do|does|did|can|could|will|would"
    r"|should|may|shall|have|has)\b|吗|呢\W*$|多少|什么|怎么|几[点天号个位时次岁]|哪|是否|能不能|可不可以"
    r"|有没有|要不要|会不会"
)
_SHOUTING = re.compile(r"\b([A-Z]{4,}|[A-Z]{3,}(\s+[A-Z]{2,}){2,})\b")


@dataclass(frozen=True, slots=True)
class Signal:
    """The message needs a person: `kind` says why, `cues` are the words that said so."""

    kind: Kind
    strength: float  # 0..1
    cues: tuple[str, ...]
    concerns: tuple[Concern, ...] = ()
    source: Source = "lexicon"


class ComplaintModel(Protocol):
    """Reads a complaint from a message's meaning (`knowledge.complaints.ComplaintClassifier`)."""

    @property
    def threshold(self) -> float:
        """Probabilities at or above this mean the message needs a person."""
        ...

    def probability(self, text: str) -> float:
        """How likely `text` needs a person, 0..1."""
        ...


@dataclass(frozen=True, slots=True)
class _Cue:
    entry: _Entry
    text: str
    weight: float


def normalise(text: str) -> str:
    """Full-width forms folded (ＡＢＣ, ？), lower case, one kind of apostrophe."""
    folded = unicodedata.normalize("NFKC", clean_text(text)).casefold()
    return folded.replace("’", "'").replace("‘", "'")


def _negations(tail: str, ascii_cue: bool) -> tuple[int, int]:
    """How many negators stand right before a cue, and where the first of them starts."""
    count, end = 0, len(tail.rstrip())
    scope = end
    if ascii_cue:
        for word in reversed(list(re.finditer(r"[a-z']+", tail[:end]))[-8:]):
            if tail[word.end() : end].strip():
                break
            w = word.group()
            if w in NEGATORS or w.endswith("n't"):
                count, scope = count + 1, word.start()
            elif w not in FILLERS:
                break
            end = word.start()
        return count, scope
    for _ in range(8):
        if _A_NOT_A.search(tail[:end]):
            end -= 3  # "有没有", "是不是": a question, not a negation
            continue
        token = next((w for w in _ZH_SCOPE_WORDS if tail.endswith(w, 0, end)), None)
        if token is None:
            break
        end -= len(token)
        if token in NEGATORS:
            count, scope = count + 1, end
    return count, scope


def _clause_cues(clause: str) -> tuple[list[_Cue], list[_Cue]]:
    """The cues that count in a clause, and those that negation or praise ruled out."""
    core = clause.rstrip(_PUNCT_END)
    rhetorical = bool(_RHETORICAL.search(clause))
    found = sorted(
        ((m, e) for e in _LEXICON for m in e.pattern.finditer(core) if m.group().strip()),
        key=lambda pair: (pair[0].start(), -len(pair[0].group())),
    )
    cues: list[_Cue] = []
    ruled_out: list[_Cue] = []
    taken_until = 0
    for match, entry in found:
        if match.start() < taken_until:
            continue  # overlaps a longer or earlier cue: "不满意" is one cue, not two
        taken_until = match.end()
        tail = core[max(0, match.start() - SCOPE_CHARS) : match.start()]
        negated, scope = _negations(tail, match.group()[0].isascii())
        flipped = negated % 2 == 1 and not rhetorical
        if flipped != entry.praise:  # "no complaints", "not bad", "happy", "不是不满意"
            ruled_out.append(_Cue(entry, match.group(), entry.weight))
            continue
        words = tail.split()
        boosted = (bool(words) and words[-1] in INTENSIFIERS) or tail.endswith(_ZH_INTENSIFIERS)
        text = (tail[scope:] + match.group()).strip() if entry.praise else match.group()
        cues.append(_Cue(entry, text, min(1.0, entry.weight + 0.15 * boosted)))
    return cues, ruled_out


def _cues(folded: str) -> tuple[list[_Cue], list[_Cue]]:
    cues: list[_Cue] = []
    ruled_out: list[_Cue] = []
    for clause in _CLAUSE.findall(folded):
        for part in _CONTRAST.split(clause):
            if part.strip():
                counted, dropped = _clause_cues(part)
                cues += counted
                ruled_out += dropped
    return cues, ruled_out


def _combined(weights: list[float]) -> float:
    missing = 1.0
    for weight in weights:
        missing *= 1.0 - weight
    return round(1.0 - missing, 3)


def detect(text: str) -> Signal | None:
    """A complaint or a request for a person in `text`, or None for anything else."""
    if _COMMAND.match(text.strip().casefold()):
        return Signal("human", 1.0, ("/human",))
    folded = normalise(text)
    cues = _cues(folded)[0]
    heat = _HEAT.pattern.search(folded) or _SHOUTING.search(unicodedata.normalize("NFKC", text))
    if heat:
        cues.append(_Cue(_HEAT, heat.group(), _HEAT.weight))
    complaint = _combined([c.weight for c in cues if c.entry.kind == "complaint"])
    human = _combined([c.weight for c in cues if c.entry.kind == "human"])
    overall = _combined([c.weight for c in cues])
    if overall < THRESHOLD:
        return None
    kind: Kind = "complaint" if complaint >= THRESHOLD or complaint > human else "human"
    # A calm "can I talk to someone about a complaint?" is not an angry one: the strength is
    # that of the cues of its kind, unless only all the cues together crossed the threshold.
    own = complaint if kind == "complaint" else human
    strength = own if own >= THRESHOLD else overall
    concerns = tuple(dict.fromkeys(c.entry.concern for c in cues if c.entry.concern))
    return Signal(kind, strength, tuple(dict.fromkeys(c.text for c in cues)), concerns)


def reassures(text: str) -> bool:
    """The words rule a complaint out: "no complaints", "I'm not angry, just ...", "不是投诉"."""
    ruled_out = _cues(normalise(text))[1]
    # Praise is left to the model ("修好了" also starts "修好了又坏"); so are negated safety
    # words, which say nothing about the service ("打不着火": the car will not start).
    return any(
        not c.entry.praise and c.entry.concern != "safety" and c.entry.weight >= THRESHOLD
        for c in ruled_out
    )


def assess(text: str, model: ComplaintModel | None = None) -> Signal | None:
    """`detect`, or when the words say nothing either way, the `model`'s reading of `text`.

    A question needs a probability of at least `QUESTION_FLOOR`. A message the model flags is a
    complaint with the cue "model:<probability>", kept on the ticket so that staff can tell it
    from one the lexicon recognised.
    """
    signal = detect(text)
    if signal is not None or model is None or reassures(text):
        return signal
    probability = model.probability(text)
    question = _QUESTION.search(normalise(text)) is not None
    if probability < (max(model.threshold, QUESTION_FLOOR) if question else model.threshold):
        return None
    return Signal("complaint", round(probability, 3), (f"model:{probability:.2f}",), (), "model")


def priority(signal: Signal) -> Literal["normal", "high"]:
    """High for safety and legal matters, strong anger, and money demanded in anger.

    The model says that something went wrong, not how angry or urgent it is: normal.
    """
    if signal.source == "model":
        return "normal"
    if "safety" in signal.concerns or "legal" in signal.concerns:
        return "high"
    if signal.kind == "complaint" and signal.strength >= STRONG:
        return "high"
    if "money" in signal.concerns and signal.strength >= 0.8:
        return "high"
    return "normal"
