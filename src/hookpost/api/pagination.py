"""Cursor pagination over time-ordered ids: newest first, the cursor is the last id shown.

New rows get larger ids, so they never shift the pages a client is walking through.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hookpost import ids
from hookpost.api.deps import PageParams
from hookpost.api.errors import Problem

Row = TypeVar("Row")


async def paginate(
    session: AsyncSession,
    query: Select[Row],
    id_column: InstrumentedAttribute[Any],
    prefix: ids.Prefix,
    page: PageParams,
) -> tuple[Sequence[Row], str | None]:
    """One page of ``query`` and the cursor of the next page (None on the last)."""
    if page.cursor is not None:
        after = ids.decode(prefix, page.cursor)
        if after is None:
            raise Problem("invalid_cursor", f"{page.cursor!r} is not a cursor of this list")
        query = query.where(id_column < after)
    rows = (await session.scalars(query.order_by(id_column.desc()).limit(page.limit + 1))).all()
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    return rows, ids.encode(prefix, getattr(rows[-1], "id"))  # noqa: B009
