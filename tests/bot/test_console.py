"""`concierge chat` in a terminal: run as a user would, lines in, replies out."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONCIERGE = Path(sys.executable).parent / "concierge"


@dataclass(frozen=True)
class Session:
    returncode: int
    stdout: str
    stderr: str


#: one embedding cache for every run here, so that only the first indexes the sample KB cold
_CACHE = Path(tempfile.mkdtemp(prefix="concierge-console-cache-"))


def chat(tmp_path: Path, typed: str) -> Session:
    """Run `concierge chat --user tester` on a fresh SQLite file with `typed` as its stdin."""
    # A clean environment and a working directory without a .env: only what the test sets counts.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "CONCIERGE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "CONCIERGE_CACHE_DIR": str(_CACHE),
    }
    done = subprocess.run(
        [str(CONCIERGE), "chat", "--user", "tester"],
        input=typed.encode(),
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=110,  # the first run embeds the sample knowledge base
        check=False,
    )
    return Session(done.returncode, done.stdout.decode(), done.stderr.decode())


def test_a_conversation_with_names_and_numbered_choices(tmp_path: Path) -> None:
    session = chat(tmp_path, "hi\nAnna\n/language\n2\n")

    assert session.returncode == 0, session.stderr
    assert "/quit" in session.stdout.splitlines()[0]  # the hint says how to leave
    assert "Hello! I'm the assistant of Concierge." in session.stdout
    assert "Nice to meet you, Anna" in session.stdout
    assert "1) English  2) 中文" in session.stdout
    assert "好的，以后我会用中文和您交流。" in session.stdout
    assert "Traceback" not in session.stderr


def test_quit_ends_the_chat_and_the_customer_is_remembered(tmp_path: Path) -> None:
    first = chat(tmp_path, "hi\nAnna\n/quit\nthis line is never read\n")
    assert first.returncode == 0, first.stderr
    assert "I'm sorry" not in first.stdout  # nothing after /quit was answered

    again = chat(tmp_path, "hello\n")
    assert again.returncode == 0, again.stderr
    assert "Hello, Anna!" in again.stdout


def test_the_chat_answers_from_the_knowledge_base(tmp_path: Path) -> None:
    session = chat(tmp_path, "hi\nWhen are you open?\n")

    assert session.returncode == 0, session.stderr
    assert "Loading the knowledge base" in session.stdout
    assert "still loading" not in session.stdout
    assert "Monday" in session.stdout or "8:00" in session.stdout, session.stdout


def test_blank_lines_are_skipped_and_a_number_not_offered_is_sent_as_text(
    tmp_path: Path,
) -> None:
    session = chat(tmp_path, "hi\n\n/language\n3\n")

    assert session.returncode == 0, session.stderr
    assert "I didn't receive any text" not in session.stdout
    assert "I'm sorry, I don't know the answer to that." in session.stdout  # "3", as text
    assert "好的" not in session.stdout
