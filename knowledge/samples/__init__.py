"""Sample knowledge bases shipped with Concierge, loaded from the YAML files beside this module.

`car_workshop()` is what the bot answers from until the business imports its own knowledge base.
The texts are ours and every name, price and time in them is a placeholder.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from knowledge.entries import KnowledgeBase
from knowledge.loaders import parse_knowledge_base

CAR_WORKSHOP: Final = "car_workshop.yaml"


def car_workshop() -> KnowledgeBase:
    """The sample knowledge base of a car workshop (English and Chinese)."""
    data = resources.files(__package__).joinpath(CAR_WORKSHOP).read_bytes()
    return parse_knowledge_base(data, f"knowledge/samples/{CAR_WORKSHOP}")
