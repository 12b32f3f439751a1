"""Conversation logic, free of I/O.

`dialogs` owns what the bot says and decides: given a `Turn` (the inbound message, a snapshot of
the customer, the conversation state and the time), a dialog returns an `Outcome` made of
`Reply` objects and `Effect` objects. It never touches a database, a network or the clock and
never imports `bot`; the runtime in `bot` applies the effects in one transaction.
"""

from dialogs.router import respond
from dialogs.types import Inbound, Outcome, Reply, Turn

__all__ = ["Inbound", "Outcome", "Reply", "Turn", "respond"]
