"""The router: which dialog answers a message, as one visible table.

Order of precedence, as in DESIGN.md: what the message *is* (sticker, contact, empty), then
commands, then the dialog waiting for an answer, then the routes below in order. A route is
a function returning an `Outcome` or `None` ("not mine"); the first taker wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dialogs import complaint, consent, faq, greeting, profile, rating, smalltalk
from dialogs.texts import t
from dialogs.types import ClearState, MessageKind, Outcome, Reply, Turn

Handler = Callable[[Turn], Outcome]
MaybeHandler = Callable[[Turn], Outcome | None]


def _help(turn: Turn) -> Outcome:
    return Outcome(replies=(Reply(t(turn.language, "command.help")),), intent="command.help")


def _start(turn: Turn) -> Outcome:
    """Hello; marketing resumes if the customer had said /stop (confirmed in a second reply)."""
    hello = smalltalk.answer(turn) or _hello(turn)
    resumed = consent.resume(turn)
    return Outcome(
        replies=hello.replies + resumed.replies,
        effects=hello.effects + resumed.effects,
        intent=resumed.intent if resumed.replies else hello.intent,
    )


def _hello(turn: Turn) -> Outcome:
    name = turn.customer.salutation
    key = "smalltalk.hello_named" if name else "smalltalk.hello"
    return Outcome(replies=(Reply(t(turn.language, key, name=name)),), intent="smalltalk.hello")


COMMANDS: Mapping[str, Handler] = {
    "/start": _start,
    "/help": _help,
    "/language": profile.ask_language,
    "/name": profile.ask_name,
    "/forget": profile.ask_erase,
    "/stop": consent.stop,
    "/human": complaint.ask_for_person,
}

# Dialogs that wait for an answer, by the name stored in the conversation state.
ACTIVE: Mapping[str, MaybeHandler] = {
    "profile": profile.continue_profile,
    "language": profile.continue_language,
    "forget": profile.continue_erase,
    faq.DIALOG: faq.continue_faq,
    rating.DIALOG: rating.continue_rating,
}


def _erase_request(turn: Turn) -> Outcome | None:
    return profile.ask_erase(turn) if profile.asks_to_erase(turn.text) else None


def _fallback(turn: Turn) -> Outcome:
    # Reached only while the bot has no knowledge base yet: the first index after a start
    # (about 25 s on an installation's very first start, 1 s after); the FAQ route answers
    # otherwise.
    return faq.not_ready(turn)


ROUTES: tuple[MaybeHandler, ...] = (
    _erase_request,
    consent.stop_request,
    rating.answer_pending,
    complaint.on_ticket,  # a live ticket takes everything else the customer writes
    complaint.person_button,
    complaint.request,
    smalltalk.answer,
    faq.answer_question,
    _fallback,
)


def command_name(text: str) -> str | None:
    """'/help' for "/help", "/help@concierge_bot" or "/HELP now"; None for plain text."""
    if not text.startswith("/") or len(text) < 2:
        return None
    return text.split(maxsplit=1)[0].split("@", 1)[0].lower()


def _unknown_command(turn: Turn, name: str) -> Outcome:
    listed = ", ".join(c for c in COMMANDS if c != "/start")
    text = t(turn.language, "command.unknown", command=name, commands=listed)
    return Outcome(replies=(Reply(text),), intent="command.unknown")


def route(turn: Turn) -> Outcome:
    """The answer to one message, ignoring the greeting that may precede it."""
    kind = turn.inbound.kind
    if kind is MessageKind.UNSUPPORTED:
        return Outcome(
            replies=(Reply(t(turn.language, "input.unsupported")),), intent="input.unsupported"
        )
    if kind is MessageKind.CONTACT:
        return profile.contact_shared(turn)
    if kind is MessageKind.FOREIGN_CONTACT:
        return profile.foreign_contact(turn)
    if not turn.text:
        return Outcome(replies=(Reply(t(turn.language, "input.empty")),), intent="input.empty")
    if (name := command_name(turn.text)) is not None:
        handler = COMMANDS.get(name)
        return handler(turn) if handler else _unknown_command(turn, name)
    prefix = Outcome()
    if turn.state is not None:
        active = ACTIVE.get(turn.state.dialog)
        taken = active(turn) if active else None
        if taken is not None:
            return taken
        prefix = Outcome(effects=(ClearState(),))  # the customer moved on; drop the stale step
    for candidate in ROUTES:
        outcome = candidate(turn)
        if outcome is not None:
            return prefix.then(outcome)
    raise AssertionError("the fallback route always answers")


def respond(turn: Turn) -> Outcome:
    """The bot's whole answer to one message, greeting included, then a pending rating's re-ask."""
    return rating.remind(turn, _respond(turn))


def _respond(turn: Turn) -> Outcome:
    kind = turn.inbound.kind
    if turn.customer.is_new and kind is not MessageKind.CONTACT:
        hello = greeting.first_contact(turn)
        if kind is not MessageKind.TEXT or not turn.text or _is_hello(turn):
            return hello
        return hello.then(route(turn))  # greet, then answer what they asked straight away
    outcome = route(turn)
    if not greeting.is_returning(turn) or outcome.intent.startswith(_NO_WELCOME):
        return outcome
    welcome = greeting.welcome_back(turn)
    if outcome.intent != "smalltalk.hello":
        return welcome.then(outcome)
    # "Welcome back, Anna!" already says hello: ask how to help instead of a second hello.
    text = f"{welcome.replies[0].text} {t(turn.language, 'greeting.how_can_i_help')}"
    return Outcome(replies=(Reply(text),), effects=outcome.effects, intent=outcome.intent)


# Answers to something the bot asked or a conversation already under way: a "welcome back"
# before "thank you for your rating" would read as if the bot had forgotten its own question.
_NO_WELCOME = ("profile.linked", "rating.", "ticket.")


def _is_hello(turn: Turn) -> bool:
    return command_name(turn.text) == "/start" or smalltalk.small_talk_kind(turn.text) == "hello"
