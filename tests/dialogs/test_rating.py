"""The rating dialog: reading scores, the score → detail → comment flow, and the one re-ask."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs import rating
from dialogs.router import respond
from dialogs.texts import t
from dialogs.types import (
    ClearState,
    CloseRatingRequest,
    ConversationState,
    CustomerView,
    EraseCustomer,
    Inbound,
    Language,
    MarkRatingReasked,
    OpenTicket,
    Outcome,
    PendingRating,
    Persona,
    RatingSetup,
    RecordRating,
    Reply,
    SetState,
    Turn,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SERVICE = PendingRating(
    request_id=7,
    subject="service",
    asked_at=NOW - timedelta(days=1),
    service_kind="oil change",
    service_date=date(2026, 11, 20),
)


def turn(
    text: str,
    *,
    language: Language = "en",
    pending: PendingRating | None = SERVICE,
    state: ConversationState | None = None,
    rater: str = "low",
    review_link: str | None = None,
) -> Turn:
    customer = CustomerView(
        id=1,
        name="Anna Li",
        address_as=None,
        language=language,
        is_new=False,
        previous_seen_at=NOW - timedelta(minutes=5),
        visit_count=3,
    )
    persona = Persona(rating=RatingSetup(rater=rater, review_link=review_link))  # type: ignore[arg-type]
    return Turn(
        inbound=Inbound("web", "u", "u", text, NOW),
        customer=customer,
        now=NOW,
        language=language,
        state=state,
        persona=persona,
        pending_rating=pending,
    )


def of(outcome: Outcome | None, kind: type) -> list[object]:
    assert outcome is not None
    return [effect for effect in outcome.effects if isinstance(effect, kind)]


def state_after(outcome: Outcome | None) -> ConversationState:
    (effect,) = of(outcome, SetState)
    assert isinstance(effect, SetState)
    return ConversationState(effect.dialog, effect.step, effect.data)


# --- reading a score


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("5 ⭐ Excellent", 5), ("4 Good", 4), ("1 Very poor", 1), ("5 ⭐ 非常满意", 5),
        ("2 不满意", 2), ("4", 4), (" 3 ", 3), ("4/5", 4), ("4 / 5", 4), ("4 out of 5", 4),
        ("4 out of 5 stars", 4), ("5 stars", 5), ("1 star", 1), ("5⭐", 5), ("★★★★", 4),
        ("⭐⭐⭐⭐⭐", 5), ("★★★☆☆", 3), ("five", 5), ("Five stars!", 5), ("五星", 5),
        ("五星好评", 5), ("5分", 5), ("打5分", 5), ("给你们打五分", 5), ("非常满意", 5),
        ("满意", 4), ("一般", 3), ("还行", 3), ("不满意", 2), ("非常不满意", 1), ("很差", 1),
        ("Excellent!", 5), ("great", 5), ("Good", 4), ("ok", 3), ("average", 3), ("bad", 2),
        ("poor", 2), ("terrible", 1), ("awful", 1), ("😍", 5), ("🤩", 5), ("😀", 4), ("🙂", 4),
        ("👍", 4), ("👍👍", 4), ("😐", 3), ("🙁", 2), ("👎", 2), ("😡", 1), ("😠", 1),
        ("☹️", 2), ("👍🏽", 4), ("４", 4), ("５分", 5), ("４／５", 4), ("I'd give it a 4", 4),
        ("Excellent, thank you!", 5), ("5 - excellent", 5), ("非常满意！", 5), ("还不错啊", 4),
    ],
)  # fmt: skip
def test_scores_are_read_in_every_usual_form(text: str, score: int) -> None:
    assert rating.parse_score(text) == score


@pytest.mark.parametrize(
    "text",
    [
        "I have 2 questions", "0", "6", "10", "4.5", "-3", "how much is 5 litres of oil?",
        "3 cars", "5 terrible", "", "   ", "hello", "五", "ok thanks", "no", "20/5", "8/10",
        "☆☆☆", "⭐⭐⭐⭐⭐⭐", "👍😡", "Can I book for 5 pm?", "我有2个问题", "满意吗",
    ],
)  # fmt: skip
def test_anything_that_is_not_clearly_a_score_is_none(text: str) -> None:
    assert rating.parse_score(text) is None


@given(st.text())
def test_parse_score_never_raises_and_stays_in_range(text: str) -> None:
    assert rating.parse_score(text) in {None, 1, 2, 3, 4, 5}


_FILLER = st.sampled_from(
    ["I", "have", "questions", "about", "my", "car", "how", "much", "is", "oil", "litres",
     "the", "when", "can", "come", "in", "at", "pm", "我", "有", "个", "问题", "多少", "钱"]
)  # fmt: skip


@given(
    st.lists(_FILLER, min_size=1, max_size=4),
    st.integers(min_value=0, max_value=100),
    st.lists(_FILLER, min_size=1, max_size=4),
)
def test_numbers_inside_longer_sentences_are_not_scores(
    before: list[str], number: int, after: list[str]
) -> None:
    assert rating.parse_score(" ".join([*before, str(number), *after])) is None


@given(st.integers(min_value=1, max_value=5), st.sampled_from(["en", "zh"]))
def test_every_button_and_full_width_digit_is_its_score(score: int, language: Language) -> None:
    assert rating.parse_score(rating.buttons(language)[5 - score]) == score
    assert rating.parse_score(chr(0xFF10 + score)) == score


# --- what the scheduler sends


def test_the_question_offers_five_buttons_in_each_language() -> None:
    english = rating.question("en", name="Anna", kind="oil change", performed_on=date(2026, 11, 20))
    assert english.text.startswith("Hello, Anna! How did we do with your oil change")
    assert "November 20, 2026" in english.text
    assert english.buttons[0] == "5 ⭐ Excellent"
    assert len(english.buttons) == 5
    chinese = rating.question("zh", name=None, kind="保养", performed_on=date(2026, 11, 20))
    assert "2026年11月20日" in chinese.text
    assert "1 到 5 分" in chinese.text
    assert chinese.buttons[-1] == "1 非常不满意"


def test_the_second_follow_up_does_not_ask_for_a_rating_again() -> None:
    first = rating.question("en", name="Anna", kind="oil change", performed_on=date(2026, 11, 20))
    second = rating.second_follow_up(
        "en", name="Anna", kind="oil change", performed_on=date(2026, 11, 20)
    )
    assert second.text != first.text
    assert "rate" not in second.text
    assert not second.buttons
    chinese = rating.second_follow_up("zh", name=None, kind="保养", performed_on=date(2026, 11, 20))
    assert "1 到 5" not in chinese.text


def test_the_ticket_question_names_the_request() -> None:
    reply = rating.ticket_question("zh", number=42)
    assert "#42" in reply.text
    assert len(reply.buttons) == 5


# --- the flow


def test_a_good_score_is_recorded_then_a_comment_is_asked_and_thanked() -> None:
    scored = rating.answer_pending(turn("4"))
    assert scored is not None
    assert scored.intent == "rating.score"
    assert of(scored, RecordRating) == [RecordRating(7, 4)]
    assert not of(scored, OpenTicket)
    assert scored.replies[-1].buttons == ("Skip",)
    commented = rating.continue_rating(turn("Quick and friendly", state=state_after(scored)))
    assert commented is not None
    assert commented.intent == "rating.comment"
    assert of(commented, RecordRating) == [RecordRating(7, 4, "Quick and friendly", {})]
    assert ClearState() in commented.effects
    assert commented.replies[0].text == t("en", "rating.comment_thanks")


def test_skipping_the_comment_ends_politely_in_chinese() -> None:
    scored = rating.answer_pending(turn("满意", language="zh"))
    assert scored is not None
    assert scored.replies[0].text == "感谢您的评分！"
    done = rating.continue_rating(turn("跳过", language="zh", state=state_after(scored)))
    assert done is not None
    assert done.effects == (ClearState(),)
    assert done.replies[0].text == t("zh", "rating.done")


def test_a_low_score_opens_a_ticket_and_asks_the_five_rater_questions() -> None:
    scored = rating.answer_pending(turn("2"))
    (ticket,) = of(scored, OpenTicket)
    assert ticket == OpenTicket(
        "rating", "Rated 2/5: oil change on November 20, 2026", rating_request_id=7
    )
    assert scored is not None
    assert "sorry" in scored.replies[0].text
    assert "#" not in scored.replies[0].text  # the runtime adds the real ticket number
    answers = {"reliability": "3", "assurance": "Skip", "tangibles": "4", "empathy": "2"}
    state = state_after(scored)
    for step in rating.DIMENSIONS:
        assert state.step == step
        outcome = rating.continue_rating(turn(answers.get(step, "1"), state=state))
        assert outcome is not None
        assert outcome.intent == "rating.detail"
        assert outcome.replies[0].buttons[-1] == "Skip"
        state = state_after(outcome)
    assert state.step == "comment"
    last = rating.continue_rating(turn("The waiting room was cold", state=state))
    dimensions = {"reliability": 3, "tangibles": 4, "empathy": 2, "responsiveness": 1}
    assert of(last, RecordRating) == [RecordRating(7, 2, "The waiting room was cold", dimensions)]
    assert not of(last, OpenTicket)  # the score already opened one


def test_rater_detail_follows_the_business_setting() -> None:
    assert state_after(rating.answer_pending(turn("5", rater="always"))).step == "reliability"
    assert state_after(rating.answer_pending(turn("3"))).step == "reliability"
    assert state_after(rating.answer_pending(turn("4"))).step == "comment"
    assert state_after(rating.answer_pending(turn("1", rater="off"))).step == "comment"


def test_a_five_invites_a_review_when_the_business_has_a_link() -> None:
    link = "https://g.page/r/example/review"
    outcome = rating.answer_pending(turn("⭐⭐⭐⭐⭐", review_link=link))
    assert outcome is not None
    assert any(link in reply.text for reply in outcome.replies)
    plain = rating.answer_pending(turn("4", review_link=link))
    assert plain is not None
    assert not any(link in reply.text for reply in plain.replies)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("no thanks", "en"),
        ("Please don't ask me again", "en"),
        ("不用了", "zh"),
        ("不想评价", "zh"),
    ],
)
def test_a_decline_closes_the_request(text: str, language: Language) -> None:
    outcome = rating.answer_pending(turn(text, language=language))
    assert outcome is not None
    assert outcome.intent == "rating.declined"
    assert outcome.effects == (CloseRatingRequest(7),)


def test_a_negative_comment_after_a_fair_score_opens_a_ticket() -> None:
    scored = rating.answer_pending(turn("4"))
    text = "The mechanic was rude to me and the car still makes the noise. Unacceptable."
    outcome = rating.continue_rating(turn(text, state=state_after(scored)))
    (ticket,) = of(outcome, OpenTicket)
    assert isinstance(ticket, OpenTicket)
    assert ticket.kind == "rating"
    assert ticket.subject.startswith("The mechanic was rude")
    assert ticket.rating_request_id == 7


def test_a_question_in_the_middle_is_answered_and_the_rating_stays_pending() -> None:
    outcome = respond(turn("Do you repair electric cars?"))
    assert not of(outcome, RecordRating)
    assert not of(outcome, CloseRatingRequest)
    assert of(outcome, MarkRatingReasked) == [MarkRatingReasked(7)]
    assert outcome.replies[-1].text.startswith("By the way, how did we do with your oil change")
    scored = rating.answer_pending(turn("4"))
    asked = ConversationState("rating", "comment", state_after(scored).data)
    for question in ("How much is an oil change?", "你们周末营业吗", "什么时候可以取车？"):
        assert rating.continue_rating(turn(question, state=asked, pending=None)) is None


def test_the_reminder_is_added_once_and_never_to_rating_or_erasure_answers() -> None:
    answer = Outcome(replies=(Reply("We open at 8."),), intent="faq.answer")
    once = rating.remind(turn("when do you open"), answer)
    assert len(once.replies) == 2
    assert once.intent == "faq.answer"
    assert once.replies[1].buttons == rating.buttons("en")
    reasked = PendingRating(7, "service", NOW, reasked=True)
    assert rating.remind(turn("when?", pending=reasked), answer) == answer
    assert rating.remind(turn("when?", pending=None), answer) == answer
    erased = Outcome(replies=(Reply("Done."),), effects=(EraseCustomer(),), intent="forget.done")
    assert rating.remind(turn("yes"), erased) == erased
    asking = Outcome(effects=(SetState("profile", "ask_name"),), intent="profile.ask_name")
    assert rating.remind(turn("/name"), asking) == asking


def test_a_ticket_rating_is_reasked_with_the_ticket_question_in_chinese() -> None:
    pending = PendingRating(9, "ticket", NOW, ticket_number=42)
    answer = Outcome(replies=(Reply("我们早上8点开门。"),), intent="faq.answer")
    outcome = rating.remind(turn("几点开门", language="zh", pending=pending), answer)
    assert outcome.replies[-1].text.startswith("顺便问一下，您的请求 #42")
    assert outcome.effects == (MarkRatingReasked(9),)


def test_the_router_records_a_score_only_while_a_rating_is_pending() -> None:
    scored = respond(turn("5 ⭐ Excellent"))
    assert of(scored, RecordRating) == [RecordRating(7, 5)]
    assert not of(scored, MarkRatingReasked)
    assert not of(respond(turn("5", pending=None)), RecordRating)
