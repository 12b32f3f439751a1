"""The staff roster: registering, finding and removing the people who work the human queue.

A staff member is found by their id or their Telegram user id (what the CLI and the group
know them by). Removing someone keeps the row, because ticket timelines refer to it, and only
sets `removed_at`; registering the same Telegram user again brings that row back rather than
making a second person of them.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.staff.actions import Role
from bot.storage.models import Staff

ROLES = ", ".join(role.value for role in Role)
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,32}")


class StaffError(Exception):
    """A roster operation that cannot be done; the message says why and what to do."""


def parse_role(role: str) -> Role:
    try:
        return Role(role.strip().lower())
    except ValueError:
        raise StaffError(f"unknown role {role!r}; use one of: {ROLES}") from None


def parse_telegram_id(value: str) -> str:
    text = value.strip()
    if not text.lstrip("-").isdigit():
        raise StaffError(f"{value!r} is not a Telegram user id (a number, e.g. 123456789)")
    return str(int(text))


def parse_username(value: str) -> str:
    """A Telegram username without its '@' (as Telegram reports it in updates)."""
    name = value.strip().removeprefix("@")
    if not _USERNAME.fullmatch(name):
        raise StaffError(f"{value!r} is not a Telegram username (letters, digits and _)")
    return name


async def add_staff(
    session: AsyncSession,
    *,
    name: str,
    role: Role,
    now: datetime,
    telegram_user_id: str | None = None,
    username: str | None = None,
) -> tuple[Staff, bool]:
    """The registered staff member and whether they were re-activated (removed before)."""
    if not name.strip():
        raise StaffError("a staff member needs a name")
    existing = None
    if telegram_user_id is not None:
        existing = await session.scalar(
            select(Staff).where(Staff.telegram_user_id == telegram_user_id)
        )
    if existing is not None and existing.removed_at is None:
        raise StaffError(
            f"Telegram id {telegram_user_id} is already registered as staff {existing.id} "
            f"({existing.name}, {existing.role})"
        )
    staff = existing or Staff(created_at=now, telegram_user_id=telegram_user_id)
    staff.name = name.strip()
    staff.role = role.value
    staff.telegram_username = username
    staff.removed_at = None
    session.add(staff)
    await session.flush()
    return staff, existing is not None


async def find_staff(session: AsyncSession, reference: str) -> Staff:
    """Staff by id or Telegram user id ("id:3" or "tg:123456789" when a number is both)."""
    text = reference.strip()
    prefix, _, rest = text.partition(":")
    if rest and prefix in ("id", "tg"):
        if not rest.strip().isdigit():
            raise StaffError(f"{reference!r}: after {prefix}: comes a number")
        number = str(int(rest))
        found = await session.scalar(
            select(Staff).where(
                Staff.id == int(number) if prefix == "id" else Staff.telegram_user_id == number
            )
        )
        if found is None:
            raise StaffError(f"no staff member {text} (see `concierge staff list --all`)")
        return found
    if not text.lstrip("-").isdigit():
        raise StaffError(
            f"{reference!r} is not a staff id or a Telegram user id (see `concierge staff list`)"
        )
    number = str(int(text))
    matches = list(
        await session.scalars(
            select(Staff)
            .where(or_(Staff.id == int(number), Staff.telegram_user_id == number))
            .order_by(Staff.id)
        )
    )
    if not matches:
        raise StaffError(
            f"no staff member with id or Telegram id {text} (see `concierge staff list`)"
        )
    if len(matches) > 1:
        raise StaffError(
            f"{text} is staff {matches[0].id}'s id and staff {matches[1].id}'s Telegram id; "
            f"say id:{text} or tg:{text}"
        )
    return matches[0]


async def remove_staff(session: AsyncSession, reference: str, now: datetime) -> Staff:
    staff = await find_staff(session, reference)
    if staff.removed_at is not None:
        raise StaffError(
            f"staff {staff.id} ({staff.name}) was already removed on {staff.removed_at:%Y-%m-%d}"
        )
    staff.removed_at = now
    return staff


async def list_staff(session: AsyncSession, include_removed: bool = False) -> list[Staff]:
    query = select(Staff).order_by(Staff.id)
    if not include_removed:
        query = query.where(Staff.removed_at.is_(None))
    return list(await session.scalars(query))
