"""Post-service ratings: "how did we do?", a 1-5 score, optional RATER detail and a comment.

The scheduler sends the first question (`question`, `ticket_question`) through the outbox; this
module understands the answer whenever it comes, and asks again at most once (`remind`) when
the customer talks about something else. A score of 1 or 2, or a negative comment, is service
recovery rather than a statistic: it opens a ticket for a person. Every answer re-records the
whole rating so far, so the runtime simply upserts it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dialogs import faq
from dialogs.consent import asks_to_stop
from dialogs.dissatisfaction import detect, priority
from dialogs.profile import asks_to_erase
from dialogs.scores import is_decline, is_skip, parse_score
from dialogs.smalltalk import small_talk_kind
from dialogs.texts import day, t
from dialogs.types import (
    AddToTicket,
    ClearState,
    CloseRatingRequest,
    Effect,
    EraseCustomer,
    Language,
    MarkRatingReasked,
    OpenTicket,
    Outcome,
    PendingRating,
    RecordRating,
    ReopenTicket,
    Reply,
    SetMarketingOptOut,
    SetState,
    Turn,
)

__all__ = [
    "DIALOG",
    "DIMENSIONS",
    "answer_pending",
    "buttons",
    "continue_rating",
    "parse_score",
    "question",
    "reask",
    "remind",
    "second_follow_up",
    "ticket_question",
]

DIALOG = "rating"
DIMENSIONS = ("reliability", "assurance", "tangibles", "empathy", "responsiveness")
COMMENT = "comment"
SUBJECT_LIMIT = 120

# Answers that are themselves about ratings, complaints, erasure or opting out: no re-ask there.
_RELATED_INTENTS = ("rating.", "ticket.", "complaint", "handoff.", "forget.", "consent.opt_out")
_RELATED_EFFECTS = (
    RecordRating,
    MarkRatingReasked,
    CloseRatingRequest,
    OpenTicket,
    AddToTicket,
    ReopenTicket,
    EraseCustomer,
)
_QUESTION = re.compile(
    r"[?？]\s*$|[吗呢么]\s*$"
    r"|^(what|how|when|where|why|who|which|can|could|do|does|did|is|are|will|would|should)\b"
    r"|^(请问|怎么|怎样|如何|什么|为什么|为啥|哪|几|多少|能不能|可不可以|可以|是否|有没有)",
    re.IGNORECASE,
)


# --- what the scheduler sends


def buttons(language: Language) -> tuple[str, ...]:
    """The five quick replies of the rating question, best first."""
    return tuple(t(language, f"rating.button_{score}") for score in range(5, 0, -1))


def question(language: Language, *, name: str | None, kind: str, performed_on: date) -> Reply:
    """The first follow-up: how did the service go, 1 to 5."""
    key = "rating.question" if name else "rating.question_anonymous"
    text = t(language, key, name=name, kind=kind, date=day(performed_on, language))
    return Reply(text, buttons(language))


def second_follow_up(
    language: Language, *, name: str | None, kind: str, performed_on: date
) -> Reply:
    """The second follow-up: is all well since, anything else we can do (no rating asked)."""
    key = "rating.second_follow_up" if name else "rating.second_follow_up_anonymous"
    return Reply(t(language, key, name=name, kind=kind, date=day(performed_on, language)))


def ticket_question(language: Language, *, number: int) -> Reply:
    """How the customer rates the handling of their request (after it was resolved)."""
    return Reply(t(language, "rating.ticket_question", number=number), buttons(language))


# --- the answer to the question


def answer_pending(turn: Turn) -> Outcome | None:
    """The route for a pending rating: a score or a decline; None for anything else."""
    pending, lang = turn.pending_rating, turn.language
    if pending is None:
        return None
    if is_decline(turn.text):
        return Outcome(
            replies=(Reply(t(lang, "rating.declined")),),
            effects=(CloseRatingRequest(pending.request_id),),
            intent="rating.declined",
        )
    score = parse_score(turn.text)
    if score is None:
        return None
    effects: list[Effect] = [RecordRating(pending.request_id, score)]
    if score <= 2:
        replies = [Reply(t(lang, "rating.sorry"))]
        subject = _ticket_subject(turn, pending, score)
        effects.append(OpenTicket("rating", subject, rating_request_id=pending.request_id))
    else:
        replies = [Reply(t(lang, "rating.thanks" if score >= 4 else "rating.thanks_middling"))]
    if score == 5 and (link := turn.persona.rating.review_link):
        replies.append(Reply(t(lang, "rating.review", link=link)))
    progress = _Progress(pending.request_id, score, ticket=score <= 2)
    rater = turn.persona.rating.rater
    detail = pending.subject == "service" and (rater == "always" or (rater == "low" and score <= 3))
    asked = _ask(lang, DIMENSIONS[0] if detail else COMMENT, progress)
    return Outcome(
        replies=(*replies, *asked.replies),
        effects=(*effects, *asked.effects),
        intent="rating.score",
    )


def continue_rating(turn: Turn) -> Outcome | None:
    """The RATER questions and the comment, one step at a time; None hands over to the router."""
    state = turn.state
    progress = _Progress.read(state.data) if state is not None else None
    if state is None or progress is None:
        return None
    text, lang = turn.text, turn.language
    if state.step in DIMENSIONS:
        following = _next_step(state.step)
        if is_skip(text):
            return _ask(lang, following, progress)
        if (score := parse_score(text)) is not None:
            progress = progress.with_dimension(state.step, score)
            asked = _ask(lang, following, progress)
            return Outcome(asked.replies, (progress.record(), *asked.effects), "rating.detail")
        if is_decline(text):
            return _finish(lang, "rating.done", (), "rating.declined")
        return None
    if state.step != COMMENT:
        return None
    if is_skip(text) or is_decline(text) or small_talk_kind(text) is not None:
        return _finish(lang, "rating.done", (), "rating.comment")
    if _QUESTION.search(text) or asks_to_stop(text) or asks_to_erase(text):
        return None  # the router answers it; the score is already recorded
    return _comment(turn, progress)


def _comment(turn: Turn, progress: _Progress) -> Outcome:
    text = turn.text.strip()
    effects: list[Effect] = [progress.record(comment=text)]
    signal = detect(text)
    key = "rating.comment_thanks"
    if signal is not None and not progress.ticket:
        subject = text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 1] + "…"
        effects.append(
            OpenTicket(
                "rating",
                subject,
                priority(signal),
                cues=signal.cues,
                rating_request_id=progress.request_id,
            )
        )
        key = "rating.comment_sorry"
    elif progress.ticket and turn.ticket is not None and turn.ticket.live:
        effects.append(AddToTicket(turn.ticket.number, text))  # for whoever looks into it
    return _finish(turn.language, key, tuple(effects), "rating.comment")


# --- asking again, once


def reask(language: Language, pending: PendingRating) -> Outcome:
    """The rating question again, briefly ("By the way, …"), marked as the one re-ask."""
    if pending.subject == "ticket" and pending.ticket_number is not None:
        text = t(language, "rating.reminder_ticket", number=pending.ticket_number)
    elif pending.service_kind and pending.service_date is not None:
        when = day(pending.service_date, language)
        text = t(language, "rating.reminder_service", kind=pending.service_kind, date=when)
    else:
        text = t(language, "rating.reminder_generic")
    return Outcome(
        replies=(Reply(text, buttons(language)),),
        effects=(MarkRatingReasked(pending.request_id),),
        intent="rating.reminder",
    )


def remind(turn: Turn, outcome: Outcome) -> Outcome:
    """`outcome`, followed by the one re-ask of a pending rating when this is a good moment."""
    pending = turn.pending_rating
    if pending is None or pending.reasked or not _may_interrupt(turn, outcome):
        return outcome
    again = reask(turn.language, pending)
    return Outcome(
        replies=outcome.replies + again.replies,
        effects=outcome.effects + again.effects,
        intent=outcome.intent,  # the message was understood as what it was, not as a rating
        confidence=outcome.confidence,
        topic=outcome.topic,
    )


def _may_interrupt(turn: Turn, outcome: Outcome) -> bool:
    if turn.ticket is not None and turn.ticket.live:
        return False  # a person is handling a problem: not the moment to ask for stars
    if outcome.intent.startswith(_RELATED_INTENTS):
        return False
    for effect in outcome.effects:
        if isinstance(effect, _RELATED_EFFECTS):
            return False
        if isinstance(effect, SetMarketingOptOut) and effect.opted_out:
            return False
        # Another dialog waits for an answer (a name, a confirmation): one question at a time.
        # The FAQ's follow-up buttons are suggestions, not a question.
        if isinstance(effect, SetState) and effect.dialog != faq.DIALOG:
            return False
    return True


# --- steps


@dataclass(frozen=True, slots=True)
class _Progress:
    """The rating so far, kept in the conversation state between steps."""

    request_id: int
    score: int
    dimensions: Mapping[str, int] = field(default_factory=dict)
    ticket: bool = False  # a ticket was already opened for this rating

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> _Progress | None:
        request_id, score = data.get("request_id"), data.get("score")
        dimensions = data.get("dimensions", {})
        if not isinstance(request_id, int) or not isinstance(score, int):
            return None
        if not isinstance(dimensions, Mapping):
            return None
        kept = {k: v for k, v in dimensions.items() if k in DIMENSIONS and isinstance(v, int)}
        return cls(request_id, score, kept, bool(data.get("ticket")))

    def data(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "score": self.score,
            "dimensions": dict(self.dimensions),
            "ticket": self.ticket,
        }

    def with_dimension(self, name: str, score: int) -> _Progress:
        dimensions = {**self.dimensions, name: score}
        return _Progress(self.request_id, self.score, dimensions, self.ticket)

    def record(self, comment: str | None = None) -> RecordRating:
        return RecordRating(self.request_id, self.score, comment, dict(self.dimensions))


def _next_step(step: str) -> str:
    index = DIMENSIONS.index(step) + 1
    return DIMENSIONS[index] if index < len(DIMENSIONS) else COMMENT


def _ask(language: Language, step: str, progress: _Progress) -> Outcome:
    skip = t(language, "rating.skip_button")
    if step == COMMENT:
        key = "rating.comment_prompt_low" if progress.score <= 3 else "rating.comment_prompt"
        reply = Reply(t(language, key), (skip,))
    else:
        number = DIMENSIONS.index(step) + 1
        text = t(language, f"rating.detail_{step}", step=number, total=len(DIMENSIONS))
        if number == 1:
            text = f"{t(language, 'rating.detail_intro')}\n\n{text}"
        reply = Reply(text, (*(str(score) for score in range(1, 6)), skip))
    intent = "rating.comment" if step == COMMENT else "rating.detail"
    return Outcome((reply,), (SetState(DIALOG, step, progress.data()),), intent)


def _finish(language: Language, key: str, effects: tuple[Effect, ...], intent: str) -> Outcome:
    return Outcome((Reply(t(language, key)),), (*effects, ClearState()), intent)


def _ticket_subject(turn: Turn, pending: PendingRating, score: int) -> str:
    """What staff read on the ticket, in the business's own language."""
    lang = turn.persona.default_language
    if pending.subject == "ticket" and pending.ticket_number is not None:
        return t(lang, "rating.subject_ticket", score=score, number=pending.ticket_number)
    if pending.service_kind and pending.service_date is not None:
        when = day(pending.service_date, lang)
        return t(lang, "rating.subject_service", score=score, kind=pending.service_kind, date=when)
    return t(lang, "rating.subject_generic", score=score)
