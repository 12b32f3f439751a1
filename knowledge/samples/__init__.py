"""Sample data shipped with Concierge, loaded from the files beside this module.

`car_workshop()` is what the bot answers from until the business imports its own knowledge base.
`default_out_of_scope()` is our own set of chit-chat and off-topic questions (English and
Chinese) that a business's bot gets but should not answer from its FAQ (`knowledge.out_of_scope`
decides when it is used). The texts are ours and every name, price and time in them is a
placeholder.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from knowledge.entries import KnowledgeBase, Language
from knowledge.loaders import parse_knowledge_base
from knowledge.loaders.drafts import decode
from knowledge.loaders.yaml_file import parse_yaml_out_of_scope

CAR_WORKSHOP: Final = "car_workshop.yaml"
OUT_OF_SCOPE: Final = "out_of_scope.yaml"


def car_workshop() -> KnowledgeBase:
    """The sample knowledge base of a car workshop (English and Chinese)."""
    data = resources.files(__package__).joinpath(CAR_WORKSHOP).read_bytes()
    return parse_knowledge_base(data, f"knowledge/samples/{CAR_WORKSHOP}")


def default_out_of_scope() -> dict[Language, tuple[str, ...]]:
    """The shipped out-of-scope examples by language (chit-chat and off-topic questions)."""
    data = resources.files(__package__).joinpath(OUT_OF_SCOPE).read_bytes()
    source = f"knowledge/samples/{OUT_OF_SCOPE}"
    return parse_yaml_out_of_scope(decode(data, source), source)
