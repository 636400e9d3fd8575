"""Svix's paging over time-ordered ids: ``limit`` (at most 250), ``iterator`` (the last id of
the page before; ``-`` and the first id of a page goes back), ``order``. Ids are hookpost's
public ids; event types page by name."""

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from fastapi import Depends, Query
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from hookpost import ids
from hookpost.errors import HookpostError
from hookpost.svix.wire import ListResponse

Row = TypeVar("Row")
Item = TypeVar("Item")

Order = Literal["ascending", "descending"]


class BadIterator(HookpostError):
    """An iterator that is not one of the list's."""

    code: ClassVar[str] = "invalid_cursor"


@dataclass(frozen=True)
class Paging:
    limit: int
    iterator: str | None
    order: Order | None


def paging(
    limit: Annotated[int, Query(ge=1, le=250)] = 50,
    iterator: Annotated[str | None, Query(max_length=300)] = None,
    order: Annotated[Order | None, Query()] = None,
) -> Paging:
    return Paging(limit, iterator, order)


PagingDep = Annotated[Paging, Depends(paging)]


@dataclass(frozen=True)
class Paged(Generic[Row]):
    rows: list[Row]
    iterator: str | None
    prev_iterator: str | None
    done: bool

    def answer(self, data: list[Item]) -> ListResponse[Item]:
        """The list response of ``data``, made of this page's rows."""
        return ListResponse(
            data=data, iterator=self.iterator, prev_iterator=self.prev_iterator, done=self.done
        )


async def page(
    session: AsyncSession,
    query: Select[Any],
    column: QueryableAttribute[Any],
    paging: Paging,
    *,
    prefix: ids.Prefix | None,
    default: Order,
) -> Paged[Any]:
    """One page of ``query`` by ``column``, whose values are ids of ``prefix`` (None: text,
    their own iterators)."""

    def decode(text: str) -> Any:
        return text if prefix is None else ids.decode(prefix, text)

    def encode(row: Any) -> str:
        value = getattr(row, column.key)
        return str(value) if prefix is None else ids.encode(prefix, value)

    order = paging.order or default
    backwards = paging.iterator is not None and paging.iterator.startswith("-")
    after = None
    if paging.iterator is not None:
        after = decode(paging.iterator.removeprefix("-"))
        if after is None:
            raise BadIterator(f"{paging.iterator!r} is not an iterator of this list")
    # going back through a descending list reads ascending from the iterator, and so on
    ascending = (order == "ascending") != backwards
    if after is not None:
        query = query.where(column > after if ascending else column < after)
    query = query.order_by(column.asc() if ascending else column.desc()).limit(paging.limit + 1)
    rows = list((await session.scalars(query)).all())
    done = len(rows) <= paging.limit
    rows = rows[: paging.limit]
    if backwards:
        rows.reverse()
    return Paged(
        rows,
        encode(rows[-1]) if rows else None,
        f"-{encode(rows[0])}" if rows else None,
        done,
    )
