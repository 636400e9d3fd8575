"""Poisoned neighbours: one tenant's events carry values Postgres refuses (NUL, lone
surrogates, bytes that are not UTF-8), in every text field an event has, sent at the same
moment as a healthy tenant's events. The healthy events all answer 202 and are stored; the
poisoned ones answer a 4xx of their own (or 2xx, when the value was storable after all),
never a 5xx and never their neighbour's error.

Two levels, both generated: through the API over HTTP (the edge refuses what cannot be
stored), and straight into the group commit with values that skipped the edge (the group
must still isolate a member the database refuses)."""

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookpost import ids
from hookpost.db.engine import is_refused_value, plain_dsn
from hookpost.ingest.emit import Emitted, EventIn, EventTypeCache
from hookpost.ingest.group import EmitGroup
from hookpost.ingest.validation import Validator
from tests.conftest import ADMIN_KEY
from tests.generated import generated
from tests.integration.live import serving_hookpost

HEALTHY_PER_ROUND = 10

# What goes inside a JSON string of the request body, as raw bytes: escapes that parse into
# NUL or a lone surrogate, bytes that are not UTF-8 (a lone continuation byte, an overlong
# NUL, a surrogate encoded as UTF-8), and a raw control byte JSON forbids.
POISONS = [
    b"\\u0000",
    b"\\ud800",
    b"\\udfff",
    b"\\udc80",
    b"\\ud83d",
    b"\xff",
    b"\x80",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\x00",
]
# Every text field of an event, and the header that stands for one.
FIELDS = [
    "tenant_id",
    "event_type",
    "idempotency_key",
    "channel",
    "payload_value",
    "payload_key",
    "nested_payload_value",
    "deliver_at",
    "idempotency_header",
]
# bytes a header value may carry at all (HTTP refuses NUL in a header before hookpost sees it)
HEADER_POISONS = [b"\xff", b"\x80", b"\xc0\x80", b"\xed\xa0\x80"]
MARK = "\u2603"  # stands for the poison in the JSON text, then is replaced bytewise


@dataclass(frozen=True)
class Poisoned:
    field: str
    poison: bytes
    before: str
    after: str

    def request(self, n: int) -> tuple[bytes, dict[str, bytes]]:
        """The body and headers of one poisoned event."""
        text = f"{self.before}{MARK}{self.after}"
        event: dict[str, Any] = {
            "tenant_id": "poisoned",
            "event_type": "invoice.paid",
            "payload": {"n": n},
        }
        headers: dict[str, bytes] = {}
        match self.field:
            case "tenant_id" | "event_type" | "idempotency_key" | "deliver_at":
                event[self.field] = text
            case "channel":
                event["channels"] = ["ok", text]
            case "payload_value":
                event["payload"]["s"] = text
            case "payload_key":
                event["payload"][text] = 1
            case "nested_payload_value":
                event["payload"]["deep"] = [{"x": [text]}]
            case "idempotency_header":
                value = self.before.encode() + self.poison + self.after.encode()
                headers["idempotency-key"] = value or self.poison
        body = json.dumps(event, ensure_ascii=False).encode()
        return body.replace(MARK.encode(), self.poison), headers


SAFE_TEXT = st.text(alphabet="abc-_.09", max_size=4)
POISONED = st.one_of(
    st.builds(
        Poisoned,
        field=st.sampled_from([f for f in FIELDS if f != "idempotency_header"]),
        poison=st.sampled_from(POISONS),
        before=SAFE_TEXT,
        after=SAFE_TEXT,
    ),
    st.builds(
        Poisoned,
        field=st.just("idempotency_header"),
        poison=st.sampled_from(HEADER_POISONS),
        before=SAFE_TEXT,
        after=SAFE_TEXT,
    ),
)


@dataclass(frozen=True)
class World:
    url: str
    database_url: str
    healthy: uuid.UUID
    poisoned: uuid.UUID


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("poisoned")
    with (
        serving_hookpost(database_url, folder, allowed_networks="127.0.0.0/8") as url,
        httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client,
    ):
        made = {}
        for uid in ("healthy", "poisoned"):
            answer = client.post("/v1/tenants", json={"name": uid, "uid": uid})
            assert answer.status_code == 201, answer.text
            made[uid] = ids.decode(ids.Prefix.TENANT, answer.json()["id"])
        answer = client.post("/v1/event-types", json={"name": "invoice.paid"})
        assert answer.status_code == 201, answer.text
        # a filter on the poisoned tenant's endpoint makes the store read its payloads as
        # jsonb, where NUL is refused
        reads_payloads = {"filters": {"*": {"n": {"$gte": 0}}}, "channels": ["ok"]}
        for uid, extra in (("healthy", {}), ("poisoned", reads_payloads)):
            endpoint = {"tenant_id": uid, "url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
            answer = client.post("/v1/endpoints", json=endpoint | extra)
            assert answer.status_code == 201, answer.text
        healthy, poisoned = made["healthy"], made["poisoned"]
        assert healthy is not None
        assert poisoned is not None
        yield World(url, database_url, healthy, poisoned)


async def _stored(database_url: str, event_ids: list[uuid.UUID]) -> int:
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM events WHERE id = ANY($1::uuid[])", event_ids
        )
        return int(count)
    finally:
        await connection.close()


async def _api_round(world: World, poisoned: list[Poisoned]) -> None:
    headers = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=world.url, headers=headers, timeout=30) as client:

        async def healthy(n: int) -> httpx.Response:
            body = {"tenant_id": "healthy", "event_type": "invoice.paid", "payload": {"n": n}}
            return await client.post("/v1/events", json=body)

        async def bad(n: int, case: Poisoned) -> httpx.Response:
            body, extra = case.request(n)
            return await client.post("/v1/events", content=body, headers=extra)

        sends = [healthy(n) for n in range(HEALTHY_PER_ROUND)]
        sends += [bad(n, case) for n, case in enumerate(poisoned)]
        answers = await asyncio.gather(*sends)  # all at once, in one group when they can
    for answer in answers[:HEALTHY_PER_ROUND]:
        assert answer.status_code == 202, answer.text
    for answer, case in zip(answers[HEALTHY_PER_ROUND:], poisoned, strict=True):
        # 200: an idempotent repeat of an earlier round's storable key
        assert answer.status_code in (200, 202) or 400 <= answer.status_code < 500, (
            case,
            answer.text,
        )
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == "application/problem+json", answer.text
    kept = [a.json()["id"] for a in answers if a.status_code < 300]
    event_ids = [ids.decode(ids.Prefix.EVENT, public) for public in kept]
    assert await _stored(world.database_url, [i for i in event_ids if i is not None]) == len(kept)


@generated(25)
@given(poisoned=st.lists(POISONED, min_size=1, max_size=6))
def test_healthy_events_are_stored_beside_poisoned_ones(
    world: World, poisoned: list[Poisoned]
) -> None:
    asyncio.run(_api_round(world, poisoned))


def _as_event_in(world: World, field: str, text: str, n: int) -> EventIn:
    base = EventIn(world.poisoned, "invoice.paid", {"n": n}, None, channels=["ok"])
    match field:
        case "channel":
            return replace(base, channels=["ok", text])
        case "payload_key":
            return replace(base, payload={text: n})
        case "payload":
            return replace(base, payload={"s": text})
        case _:  # idempotency_key, tenant_uid, event_type
            return replace(base, **{field: text})


async def _group_round(world: World, bad: list[tuple[str, str]]) -> None:
    pool = await asyncpg.create_pool(plain_dsn(world.database_url), min_size=1, max_size=2)
    validator = Validator(timeout_s=5, processes=1)
    group = EmitGroup(pool, EventTypeCache(), validator)
    try:
        # the type in the cache first: then every emit joins the waiting list in one step,
        # and the stores carry healthy and poisoned events together
        await group.emit(EventIn(world.healthy, "invoice.paid", {"warm": True}, None))
        healthy = [
            EventIn(world.healthy, "invoice.paid", {"n": n}, None) for n in range(HEALTHY_PER_ROUND)
        ]
        poisoned = [_as_event_in(world, field, text, n) for n, (field, text) in enumerate(bad)]
        outcomes = await asyncio.gather(
            *(group.emit(event) for event in [*healthy, *poisoned]), return_exceptions=True
        )
    finally:
        await group.close()
        await pool.close()
        await validator.close()
    for outcome in outcomes[:HEALTHY_PER_ROUND]:
        assert isinstance(outcome, Emitted), outcome
        assert outcome.created
    for outcome, case in zip(outcomes[HEALTHY_PER_ROUND:], bad, strict=True):
        if isinstance(outcome, BaseException):
            refused = is_refused_value(outcome) or isinstance(outcome, orjson.JSONEncodeError)
            assert refused, (case, repr(outcome))
    stored = [o.id for o in outcomes if isinstance(o, Emitted)]
    assert await _stored(world.database_url, stored) == len(stored)


UNSTORABLE = st.builds(
    lambda before, bad, after: before + bad + after,
    st.text(max_size=4),
    st.sampled_from(["\x00", "\ud800", "\udbff", "\udc80", "\udfff"]),
    st.text(max_size=4),
)


@generated(25)
@given(
    bad=st.lists(
        st.tuples(
            st.sampled_from(
                ["idempotency_key", "tenant_uid", "channel", "event_type", "payload_key", "payload"]
            ),
            UNSTORABLE,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_group_commit_isolates_a_member_the_database_refuses(
    world: World, bad: list[tuple[str, str]]
) -> None:
    """Values that skipped the edge's checks: each fails its own event, the group's others
    are stored."""
    asyncio.run(_group_round(world, bad))
