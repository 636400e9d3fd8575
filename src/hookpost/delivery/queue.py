"""The queue's SQL: the deliveries table is the queue (DESIGN.md, decision 3). Each statement
is named for what it does; the worker calls them and nothing else touches the queue's state.

- ``FAN_OUT``: the insert of an event's deliveries, inside ingest's storing statement, and
  ``MATCH_SUBSCRIPTIONS``, its rules applied to a sample event (a filter test); the
  workers' wake-up channel (``NOTIFY_CHANNEL``) and each lane's condition (``FIRST_LANE``,
  ``RETRY_LANE``, ``DUE``), which every statement on the lanes uses (the metrics too).

- ``claim``: lock the due deliveries of each lane (FOR UPDATE SKIP LOCKED) and lease, in the
  same statement, those whose endpoint's limits allow them all, returning what sending needs
  (event body; once per endpoint its url, headers and live secrets); the others go to
  ``limits.plan_claim``, and one more statement leases what it allows and pushes back the
  rest. Both statements keep one generic plan, whatever the tables' sizes (``_ROW``).
- ``record``: group commit of many attempts (COPY) and delivery states (one UPDATE), plus the
  endpoint health they imply (failure streaks, disabling after 410 or a long failure), the
  concurrency limits the worker's gates changed, and the minute's attempt counts.
- ``pause_deliveries`` / ``resume_deliveries``: a disabled endpoint's pending deliveries stop,
  and start again when it is enabled.
- ordered lanes: ``PROMOTE_LANE_HEADS`` (a flush finished a lane's delivery: the next one's
  turn), ``promote_stranded`` (the workers' sweep), ``dissolve_lanes`` and ``release_holds``
  (an endpoint's ordering changed).
- ``heartbeat`` / ``take_back_from_dead`` / ``sign_off``: each worker says it is alive every
  few seconds; what a worker held whose heartbeat stopped goes back to pending at once.
- ``recover_expired``: deliveries whose lease ran out back to pending (the backstop for a
  worker that never wrote a heartbeat).
- ``release``: a stopping worker's unsent deliveries back to pending at once.
- ``resend``: one delivery back to pending now, its next attempt marked manual.
- ``recover_batch``: a bounded batch of an endpoint's failed deliveries back to pending;
  ``count_recoverable``: how many a window holds.
- ``seconds_to_next_due``: when the earliest pending delivery falls due, for the timer.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from hookpost.db.engine import rows_affected
from hookpost.delivery.gates import Holding
from hookpost.delivery.limits import Candidate, LimitRules, plan_claim

NOTIFY_CHANNEL = "hookpost_deliveries"
NOTIFY = f"NOTIFY {NOTIFY_CHANNEL}"  # wakes the workers when its transaction commits

# The two lanes of pending deliveries, each with its own partial index (migration 0004):
# first attempts, and retries (a worker gives retries only part of its slots).
FIRST_LANE = "status = 'pending' AND round_attempts = 0"
RETRY_LANE = "status = 'pending' AND round_attempts > 0"
DUE = "next_attempt_at <= now()"


# The fan-out's rules, as conditions on an endpoint ``ep`` and its subscription ``s`` for an
# event's channels, type and payload (SQL expressions): an endpoint that listens to channels
# takes only events that share one; a subscription takes the exact type, every type (`*`) or
# a prefix (`invoice.*`), and, with a filter, only the payloads it passes (``admin.filters``
# compiles it; an unknown result, such as a number compared with a string, does not pass).
# FAN_OUT and MATCH_SUBSCRIPTIONS share them, so a filter test answers as the fan-out acts.
def _listens(channels: str) -> str:
    return f"(ep.channels IS NULL OR ep.channels && {channels})"


def _takes_type(event_type: str) -> str:
    return f"""(s.event_type = {event_type}
        OR s.event_type = '*'
        OR (right(s.event_type, 2) = '.*'
            AND starts_with({event_type}, left(s.event_type, -1))))"""


def _passes(payload: str) -> str:
    return f"""(s.filter_path IS NULL
        OR jsonb_path_match({payload}, s.filter_path, s.filter_vars, silent => true))"""


# JSON text ``json`` as jsonb, or NULL where jsonb cannot hold it: a string with NUL (an
# escape \u0000 whose backslash is not itself escaped). Filters read such a payload as NULL,
# which none passes; the event is stored and fanned out to unfiltered subscriptions as usual.
def payload_of(json: str) -> str:
    return rf"""(CASE WHEN strpos({json}::text, '\u0000') = 0
             OR {json}::text !~ '(^|[^\\])(\\\\)*\\u0000'
           THEN {json}::jsonb END)"""


# Ordered lanes: an endpoint with ``ordering`` puts each delivery in the lane its event's
# payload names (the field ``ordering.key``; without one, or without that field, the lane
# ''), and a lane sends one delivery at a time in emit (event id) order. A delivery ``d``
# keeps those emitted after it in its lane from being sent while it is unfinished, or failed
# and holding the lane (the endpoint's ``on_exhausted`` is "hold").
def _in_lane(d: str) -> str:
    return f"({d}.status IN ('waiting', 'pending', 'in_flight') OR {d}.holds_lane)"


# Whether the pending delivery ``d`` may be sent: it is unordered, or first in its lane.
def _at_head(d: str) -> str:
    return f"""({d}.lane IS NULL OR NOT EXISTS (
        SELECT 1 FROM deliveries o
        WHERE o.endpoint_id = {d}.endpoint_id AND o.lane = {d}.lane
          AND o.event_id < {d}.event_id AND {_in_lane("o")}))"""


# An event's deliveries, one to every live endpoint of its tenant that listens to its
# channels and has a subscription that takes it, read from the CTE ``inserted`` (id,
# tenant_id, event_type, deliver_at, channels, payload) of the storing statement
# (``ingest.emit``), due at the event's ``deliver_at`` (now when it has none or it passed),
# their retries' age counted from then. A disabled endpoint's is recorded as failed with the
# reason, so that a recovery can send it once the endpoint is enabled again. An ordered
# endpoint's is pending only when it is first of its lane in this statement and nothing of
# its lane is unfinished; else it waits (PROMOTE_LANE_HEADS makes it pending in its turn).
FAN_OUT = f"""
INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, next_attempt_at,
                        round_started_at, status, status_reason, finished_at, lane)
SELECT hookpost_uuid7(), f.event_id, f.endpoint_id, f.tenant_id, f.event_type, f.due, f.due,
       CASE WHEN NOT f.enabled THEN 'failed'
            WHEN f.lane IS NULL THEN 'pending'
            WHEN f.place = 1 AND NOT EXISTS (
                SELECT 1 FROM deliveries o
                WHERE o.endpoint_id = f.endpoint_id AND o.lane = f.lane AND {_in_lane("o")}
            ) THEN 'pending'
            ELSE 'waiting' END,
       CASE WHEN f.enabled THEN NULL
            ELSE 'emitted while the endpoint was disabled: '
                 || coalesce(f.disabled_reason, 'no reason given') END,
       CASE WHEN f.enabled THEN NULL ELSE now() END,
       f.lane
FROM (
    SELECT ev.id AS event_id, ep.id AS endpoint_id, ep.tenant_id, ev.event_type,
           GREATEST(ev.deliver_at, now()) AS due, ep.enabled, ep.disabled_reason, l.lane,
           row_number() OVER (PARTITION BY ep.id, l.lane ORDER BY ev.id) AS place
    FROM inserted ev
    JOIN endpoints ep ON ep.tenant_id = ev.tenant_id AND ep.deleted_at IS NULL
    CROSS JOIN LATERAL (
        SELECT CASE WHEN ep.ordering IS NOT NULL
                    THEN COALESCE(ev.payload ->> (ep.ordering ->> 'key'), '') END AS lane
    ) l
    WHERE {_listens("ev.channels")}
      AND EXISTS (
        SELECT 1 FROM subscriptions s
        WHERE s.endpoint_id = ep.id
          AND {_takes_type("ev.event_type")}
          AND {_passes("ev.payload")}
    )
) f
RETURNING event_id, status = 'pending' AS queued, status = 'waiting' AS waits, endpoint_id,
          lane
""".strip()

# A filter test: for endpoint $1 and an event of type $2, payload $3 and channels $4, whether
# the endpoint listens to those channels and, per subscription (oldest first), whether it
# takes the type and whether its filter passes the payload, by the fan-out's rules.
MATCH_SUBSCRIPTIONS = f"""
SELECT s.id, s.event_type, {_listens("$4::text[]")} AS listens,
       {_takes_type("$2::text")} AS takes_type,
       COALESCE({_passes(payload_of("$3::text"))}, false) AS passes
FROM endpoints ep
JOIN subscriptions s ON s.endpoint_id = ep.id
WHERE ep.id = $1
ORDER BY s.id
"""

# One delivery of a test event to the endpoint $1 alone, whatever it subscribes to, read from
# the CTE ``inserted`` of the statement that stores the event (``ingest.emit.send_to_one``).
DIRECT_DELIVERY = """
INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, next_attempt_at,
                        status)
SELECT hookpost_uuid7(), ev.id, $1, ev.tenant_id, ev.event_type, now(), 'pending'
FROM inserted ev
RETURNING id
""".strip()

# The rows CLAIM and APPLY_PLAN answer, one column list for three kinds of row (the columns
# a kind does not use are NULL): "leased", a delivery leased now with what sending it needs;
# "limited", a due delivery its endpoint's limits must decide on (``limits.plan_claim``); and
# "endpoint", once per endpoint of those rows, its limits, where and how to send (url,
# headers, live secrets newest first). Each statement reads every table through an index and
# joins none of its own intermediate sets to another (an id list is an array, filtered with
# ``= ANY``): its plan cannot turn into a nested loop over them, whatever the planner thinks
# of the tables' sizes, so the claim connection can keep one generic plan (``worker.py``).
_ROW = (
    ("kind", "text"),
    ("id", "uuid"),
    ("endpoint_id", "uuid"),
    ("first", "bool"),
    ("next_attempt_at", "timestamptz"),
    ("event_id", "uuid"),
    ("tenant_id", "uuid"),
    ("event_type", "text"),
    ("attempt_count", "int"),
    ("trigger", "text"),
    ("round_attempts", "int"),
    ("round_started_at", "timestamptz"),
    ("body", "text"),
    ("enabled", "bool"),
    ("max_in_flight", "int"),
    ("rate_limit_per_s", "int"),
    ("rate_tokens", "float8"),
    ("since_refill_s", "float8"),
    ("consecutive_failures", "int"),
    ("probe_in_s", "float8"),
    ("others_held", "int"),
    ("url", "text"),
    ("headers", "text"),
    ("deleted", "bool"),
    ("disabled_reason", "text"),
    ("secret_ids", "uuid[]"),
    ("secret_ciphertexts", "bytea[]"),
    ("policy", "text"),
    ("lane", "text"),
    ("hold", "bool"),
    ("body_format", "text"),
    ("signature_headers", "text"),
)


def _select(kind: str, **columns: str) -> str:
    """The select list of one kind of row: ``columns`` maps a column of ``_ROW`` to its SQL
    expression, the others are NULL."""
    unknown = columns.keys() - {name for name, _ in _ROW}
    assert not unknown, f"not columns of a claim row: {unknown}"
    values = [f"'{kind}'::text"] + [
        f"({columns[name]})::{sql_type}" if name in columns else f"NULL::{sql_type}"
        for name, sql_type in _ROW[1:]
    ]
    return ",\n       ".join(
        f"{value} AS {name}" for value, (name, _) in zip(values, _ROW, strict=True)
    )


_LEASED = _select(
    "leased",
    id="l.id",
    endpoint_id="l.endpoint_id",
    first="l.round_attempts = 0",
    next_attempt_at="l.next_attempt_at",
    event_id="l.event_id",
    tenant_id="l.tenant_id",
    event_type="l.event_type",
    attempt_count="l.attempt_count",
    trigger="l.trigger",
    round_attempts="l.round_attempts",
    round_started_at="l.round_started_at",
    body="SELECT e.body::text FROM events e WHERE e.id = l.event_id",
    lane="l.lane",
)

# what a lease returns, read by _LEASED as ``l``
_LEASED_RETURNING = """d.id, d.endpoint_id, d.next_attempt_at, d.event_id, d.tenant_id,
              d.event_type, d.attempt_count, d.trigger, d.round_attempts, d.round_started_at,
              d.lane"""

_ENDPOINT_SENDING = {
    "max_in_flight": "ep.max_in_flight",
    "url": "ep.url",
    "headers": "ep.headers::text",
    "enabled": "ep.enabled",
    "deleted": "ep.deleted_at IS NOT NULL",
    "disabled_reason": "ep.disabled_reason",
    "secret_ids": "s.ids",
    "secret_ciphertexts": "s.ciphertexts",
    "policy": "NULLIF(ep.policy, '{}'::jsonb)::text",
    "body_format": "ep.body_format",
    "signature_headers": "ep.signature_headers",
    "hold": "COALESCE(ep.ordering ->> 'on_exhausted' = 'hold', false)",
}


# The live secrets of endpoint ``ep``, newest first, as two arrays (NULL when ``needed`` is
# false: endpoints whose deliveries were not leased send nothing).
def _live_secrets(needed: str) -> str:
    return f"""LEFT JOIN LATERAL (
    SELECT array_agg(es.id ORDER BY es.id DESC) AS ids,
           array_agg(es.ciphertext ORDER BY es.id DESC) AS ciphertexts
    FROM endpoint_secrets es
    WHERE es.endpoint_id = ep.id AND ({needed})
      AND (es.expires_at IS NULL OR es.expires_at > now())
) s ON true"""


# The claim, in one statement: the due deliveries of each lane (of an ordered lane, only its
# first: ``_at_head``), oldest first, locked (SKIP
# LOCKED, so that workers claiming at once take different rows), at most $1 in all and $2
# retries, each with its place among its endpoint's; then, per endpoint, its limits and the
# deliveries other workers hold of it. For an endpoint limited by room alone (breaker closed,
# no rate limit), the claiming worker's room (``gates.Holding``: the endpoints $6 with their
# rooms $7 and paces $9, $8 for any other endpoint, less what the other workers hold) decides
# here: the deliveries within it are leased, the others pushed back, the n-th over it by n
# times the endpoint's pace (at least $10 seconds). A disabled endpoint's are all leased, to
# be stopped. The deliveries of the other endpoints come back as "limited", for
# ``limits.plan_claim`` and APPLY_PLAN: so the common claim is one round trip. (A second
# round trip for every endpoint out of room cost a fifth of the throughput with 60 of 300
# endpoints hanging; candidates read without locks and leased by a second statement lost a
# third of their rows to a second worker.) Per-endpoint values reach the rows through arrays
# (``array_position``), never a join of two of the statement's sets (``_ROW`` says why).
CLAIM = f"""
WITH first_lane AS (
    SELECT id, endpoint_id, next_attempt_at, true AS first FROM deliveries
    WHERE {FIRST_LANE} AND {DUE} AND {_at_head("deliveries")}
    ORDER BY next_attempt_at LIMIT $1
    FOR UPDATE SKIP LOCKED
),
retry_lane AS (
    SELECT id, endpoint_id, next_attempt_at, false AS first FROM deliveries
    WHERE {RETRY_LANE} AND {DUE} AND {_at_head("deliveries")}
    ORDER BY next_attempt_at LIMIT $2
    FOR UPDATE SKIP LOCKED
),
picked AS MATERIALIZED (
    SELECT lanes.*,
           row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at)::int AS place
    FROM (
        SELECT * FROM (SELECT * FROM first_lane UNION ALL SELECT * FROM retry_lane) lanes
        ORDER BY next_attempt_at LIMIT $1
    ) lanes
),
eps AS MATERIALIZED (
    SELECT ep.*, f.others_held,
           CASE WHEN NOT ep.enabled THEN 2147483647
                ELSE COALESCE(($7::int[])[array_position($6::uuid[], ep.id)], $8)
                     - f.others_held END AS room,
           NOT ep.enabled
           OR (ep.consecutive_failures < $5 AND ep.rate_limit_per_s IS NULL) AS by_room
    FROM (SELECT DISTINCT endpoint_id FROM picked) pe
    JOIN endpoints ep ON ep.id = pe.endpoint_id
    CROSS JOIN LATERAL (
        SELECT count(*)::int AS others_held FROM deliveries d
        WHERE d.endpoint_id = ep.id AND d.status = 'in_flight' AND d.locked_by <> $4
    ) f
),
rooms AS MATERIALIZED (
    SELECT array_agg(id) AS ids, array_agg(room) AS rooms FROM eps WHERE by_room
),
decided AS MATERIALIZED (
    SELECT p.id, p.endpoint_id, p.place,
           r.rooms[array_position(r.ids, p.endpoint_id)] AS room
    FROM picked p CROSS JOIN rooms r
),
over AS MATERIALIZED (
    SELECT array_agg(id) AS ids,
           array_agg(GREATEST($10, (place - GREATEST(room, 0)) * COALESCE(
               ($9::float8[])[array_position($6::uuid[], endpoint_id)], 0))) AS secs
    FROM decided WHERE place > room
),
deferred AS (
    UPDATE deliveries d
    SET next_attempt_at = now() + make_interval(
        secs => (SELECT o.secs[array_position(o.ids, d.id)] FROM over o)
    )
    WHERE d.id = ANY((SELECT ids FROM over)::uuid[]) AND d.status = 'pending'
    RETURNING 1
),
leased AS (
    UPDATE deliveries d
    SET status = 'in_flight', locked_until = now() + make_interval(secs => $3), locked_by = $4
    WHERE d.id = ANY(ARRAY(SELECT id FROM decided WHERE place <= room))
    RETURNING {_LEASED_RETURNING}
)
SELECT {_LEASED}
FROM leased l
UNION ALL
SELECT {
    _select(
        "limited",
        id="p.id",
        endpoint_id="p.endpoint_id",
        first="p.first",
        next_attempt_at="p.next_attempt_at",
    )
}
FROM picked p
WHERE p.endpoint_id = ANY(ARRAY(SELECT id FROM eps WHERE NOT by_room))
UNION ALL
SELECT {
    _select(
        "endpoint",
        id="ep.id",
        endpoint_id="ep.id",
        rate_limit_per_s="ep.rate_limit_per_s",
        rate_tokens="ep.rate_tokens",
        since_refill_s="EXTRACT(EPOCH FROM now() - ep.rate_updated_at)",
        consecutive_failures="ep.consecutive_failures",
        probe_in_s="EXTRACT(EPOCH FROM ep.breaker_probe_at - now())",
        others_held="ep.others_held",
        **_ENDPOINT_SENDING,
    )
}
FROM eps ep
{_live_secrets("ep.by_room AND ep.room > 0")}
ORDER BY next_attempt_at
"""

# For the deliveries CLAIM left to the limits, the plan applied in one statement: refused
# deliveries pushed back, rate tokens spent, breaker probes started, and the chosen deliveries
# leased (those another worker took in the meantime are skipped), answered as CLAIM's rows.
# A pushed-back row finds its delay by its place in the id list: a join to unnest() let a
# plan made without statistics read the whole list again for every row.
APPLY_PLAN = f"""
WITH deferred AS (
    UPDATE deliveries d
    SET next_attempt_at = now() + make_interval(
        secs => ($5::float8[])[array_position($4::uuid[], d.id)]
    )
    WHERE d.id = ANY($4::uuid[]) AND d.status = 'pending'
    RETURNING 1
),
spent AS (
    UPDATE endpoints ep SET rate_tokens = u.tokens, rate_updated_at = now()
    FROM unnest($6::uuid[], $7::float8[]) AS u(id, tokens)
    WHERE ep.id = u.id
    RETURNING 1
),
probed AS (
    UPDATE endpoints SET breaker_probe_at = now() + make_interval(secs => $9)
    WHERE id = ANY($8::uuid[])
    RETURNING 1
),
picked AS (
    SELECT id FROM deliveries
    WHERE id = ANY($1::uuid[]) AND status = 'pending'
    FOR UPDATE SKIP LOCKED
),
leased AS (
    UPDATE deliveries d
    SET status = 'in_flight', locked_until = now() + make_interval(secs => $2), locked_by = $3
    WHERE d.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING {_LEASED_RETURNING}
)
SELECT {_LEASED}
FROM leased l
UNION ALL
SELECT {_select("endpoint", id="ep.id", endpoint_id="ep.id", **_ENDPOINT_SENDING)}
FROM endpoints ep
{_live_secrets("true")}
WHERE ep.id = ANY(ARRAY(SELECT DISTINCT endpoint_id FROM leased))
ORDER BY next_attempt_at
"""

# The results, joined to their rows by id. The flush allows only nested loops through indexes
# (``worker.FLUSH_SETTINGS``) and the lease check is a CASE, which no index can answer, so
# each result finds its row through the primary key, with statistics or without. In the same
# statement (no round trip of its own), the attempts' counts $11 and $12 go to this worker's
# row of the current minute, for the console's chart.
UPDATE_DELIVERIES = """
WITH counted AS (
    INSERT INTO attempt_minutes (minute, worker_id, succeeded, failed)
    SELECT date_trunc('minute', now()), $9, $11::int, $12::int WHERE $11::int + $12::int > 0
    ON CONFLICT (minute, worker_id) DO UPDATE
    SET succeeded = attempt_minutes.succeeded + EXCLUDED.succeeded,
        failed = attempt_minutes.failed + EXCLUDED.failed
)
UPDATE deliveries d
SET status = u.status,
    status_reason = u.reason,
    attempt_count = GREATEST(d.attempt_count, u.attempt_count),
    round_attempts = CASE WHEN u.last_attempt_at IS NULL THEN d.round_attempts
                          ELSE d.round_attempts + 1 END,
    trigger = CASE WHEN u.last_attempt_at IS NULL THEN d.trigger ELSE 'scheduled' END,
    next_attempt_at = COALESCE(u.next_attempt_at, d.next_attempt_at),
    last_attempt_at = COALESCE(u.last_attempt_at, d.last_attempt_at),
    last_status_code = COALESCE(u.last_status_code, d.last_status_code),
    last_error_kind = CASE WHEN u.last_attempt_at IS NULL THEN d.last_error_kind
                           ELSE u.last_error_kind END,
    finished_at = CASE WHEN u.status IN ('succeeded', 'failed', 'cancelled') THEN now() END,
    resume_on_enable = u.resume_on_enable,
    holds_lane = u.holds_lane,
    locked_until = NULL,
    locked_by = NULL
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::timestamptz[],
            $6::timestamptz[], $7::int[], $8::text[], $10::bool[], $13::bool[])
     AS u(id, status, reason, attempt_count, next_attempt_at, last_attempt_at,
          last_status_code, last_error_kind, resume_on_enable, holds_lane)
WHERE d.id = u.id
  AND CASE d.status WHEN 'in_flight' THEN d.locked_by = $9 WHEN 'pending' THEN true END
"""

# Per endpoint, in the order the batch saw them: a success resets the failure streak. The
# self-join reads the streak before this update, to tell when it crosses the breaker's line.
# A healthy endpoint that only succeeded changes nothing and is left alone: every worker's
# every flush rewrote its row, and the flushes of several workers queued on its row lock.
UPDATE_ENDPOINT_HEALTH = """
UPDATE endpoints ep
SET consecutive_failures = CASE WHEN h.succeeded THEN h.failures_after
                                ELSE ep.consecutive_failures + h.failures_after END,
    failing_since = CASE WHEN h.failures_after = 0 THEN NULL
                         WHEN h.succeeded THEN now()
                         ELSE COALESCE(ep.failing_since, now()) END,
    breaker_probe_at = CASE WHEN h.failures_after = 0 THEN NULL ELSE ep.breaker_probe_at END
FROM unnest($1::uuid[], $2::bool[], $3::int[]) AS h(endpoint_id, succeeded, failures_after),
     endpoints before
WHERE ep.id = h.endpoint_id AND before.id = ep.id
  AND NOT (h.failures_after = 0 AND ep.consecutive_failures = 0
           AND ep.failing_since IS NULL AND ep.breaker_probe_at IS NULL)
RETURNING ep.id, ep.tenant_id, ep.url, ep.consecutive_failures, ep.failing_since,
          before.consecutive_failures AS failures_before
"""

REPORT_LIMITS = """
UPDATE endpoints ep SET concurrency_limit = u.concurrency_limit
FROM unnest($1::uuid[], $2::int[]) AS u(id, concurrency_limit)
WHERE ep.id = u.id
"""

# Endpoints that answered 410, or failed every attempt for longer than the limit.
DISABLE_ENDPOINTS = """
UPDATE endpoints ep
SET enabled = false, disabled_at = now(), updated_at = now(),
    disabled_reason = CASE WHEN ep.id = ANY($1::uuid[]) THEN 'the endpoint answered 410 Gone'
                      ELSE 'every attempt failed for more than ' || $3::text || ' s' END
WHERE ep.enabled
  AND (ep.id = ANY($1::uuid[])
       OR (ep.id = ANY($2::uuid[]) AND ep.consecutive_failures > 0
           AND ep.failing_since < now() - make_interval(secs => $4)))
RETURNING ep.id, ep.tenant_id, ep.url, ep.disabled_reason
"""

# A disabled endpoint's pending and waiting deliveries stop, marked to resume when it is
# enabled again; those of ordered lanes resume waiting, and each lane's first is promoted.
PAUSE_DELIVERIES = """
UPDATE deliveries
SET status = 'failed', resume_on_enable = true, finished_at = now(),
    status_reason = 'the endpoint is disabled: ' || $2::text
WHERE endpoint_id = $1 AND status IN ('pending', 'waiting')
"""

RESUME_DELIVERIES = """
UPDATE deliveries
SET status = CASE WHEN lane IS NULL THEN 'pending' ELSE 'waiting' END,
    resume_on_enable = false, next_attempt_at = now(), round_attempts = 0,
    round_started_at = now(), status_reason = NULL, finished_at = NULL
WHERE endpoint_id = $1 AND resume_on_enable AND status = 'failed'
"""


# The first unfinished delivery of each lane that ``lanes`` (SQL giving endpoint_id, lane)
# names made pending, where it is waiting: after a delivery of the lane finished, or to
# sweep up a lane whose first was stored waiting while the delivery before it finished (the
# two transactions could not see each other). Its retries' age counts from now.
def _promote(lanes: str) -> str:
    return f"""
WITH lanes AS ({lanes}),
heads AS (
    SELECT h.id FROM lanes l
    CROSS JOIN LATERAL (
        SELECT o.id, o.status FROM deliveries o
        WHERE o.endpoint_id = l.endpoint_id AND o.lane = l.lane AND {_in_lane("o")}
        ORDER BY o.event_id LIMIT 1
    ) h
    WHERE h.status = 'waiting'
)
UPDATE deliveries d
SET status = 'pending', next_attempt_at = GREATEST(d.next_attempt_at, now()),
    round_started_at = GREATEST(d.round_started_at, now())
WHERE d.id = ANY(ARRAY(SELECT id FROM heads)) AND d.status = 'waiting'
"""


# after a flush: the lanes $1 (endpoints) / $2 (lanes) where a delivery finished
PROMOTE_LANE_HEADS = _promote(
    "SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[]) AS l(endpoint_id, lane)"
)
# every lane of endpoint $1 (its deliveries resumed, or its lanes' holds released)
PROMOTE_ENDPOINT_LANES = _promote(
    "SELECT DISTINCT endpoint_id, lane FROM deliveries "
    "WHERE endpoint_id = $1 AND lane IS NOT NULL AND status = 'waiting'"
)
# every lane with a waiting delivery (the workers' sweep)
PROMOTE_STRANDED = _promote(
    "SELECT DISTINCT endpoint_id, lane FROM deliveries "
    "WHERE lane IS NOT NULL AND status = 'waiting'"
)

# An endpoint's ordering turned off: its lanes dissolve, their waiting deliveries pending.
DISSOLVE_LANES = """
UPDATE deliveries
SET lane = NULL, holds_lane = false,
    status = CASE WHEN status = 'waiting' THEN 'pending' ELSE status END,
    next_attempt_at = CASE WHEN status = 'waiting' THEN GREATEST(next_attempt_at, now())
                           ELSE next_attempt_at END
WHERE endpoint_id = $1 AND lane IS NOT NULL
  AND (status IN ('waiting', 'pending', 'in_flight') OR holds_lane)
"""

# A deleted endpoint's deliveries waiting in its lanes end at once (its pending ones end
# when claimed, as any other's).
CANCEL_WAITING = """
UPDATE deliveries
SET status = 'cancelled', finished_at = now(), status_reason = 'the endpoint was deleted'
WHERE endpoint_id = $1 AND lane IS NOT NULL AND status = 'waiting'
"""

# An endpoint's lanes no longer held ("on_exhausted" is "fail" now): their failed firsts let
# the rest go.
RELEASE_HOLDS = """
UPDATE deliveries SET holds_lane = false WHERE endpoint_id = $1 AND holds_lane
"""

RECOVER_EXPIRED = """
UPDATE deliveries
SET status = 'pending', locked_until = NULL, locked_by = NULL, next_attempt_at = now()
WHERE status = 'in_flight' AND locked_until < now()
"""

# A worker's heartbeat, written every few seconds while it runs.
HEARTBEAT = """
INSERT INTO workers (id, started_at, heartbeat_at) VALUES ($1, now(), now())
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
"""

# Workers whose heartbeat stopped $1 seconds ago or more: they are dead, and forgotten.
FORGET_DEAD_WORKERS = """
DELETE FROM workers WHERE heartbeat_at < now() - make_interval(secs => $1) RETURNING id
"""

# What dead workers held goes back at once, read through the small in-flight index.
TAKE_BACK = """
UPDATE deliveries
SET status = 'pending', locked_until = NULL, locked_by = NULL, next_attempt_at = now()
WHERE status = 'in_flight' AND locked_by = ANY($1::text[])
"""

SIGN_OFF = "DELETE FROM workers WHERE id = $1"

RELEASE = """
UPDATE deliveries
SET status = 'pending', locked_until = NULL, locked_by = NULL, next_attempt_at = now()
WHERE id = ANY($1::uuid[]) AND status = 'in_flight' AND locked_by = $2
"""

# A resend or a recovery starts a new retry round: the limits apply afresh, history stays.
RESEND = """
UPDATE deliveries
SET status = 'pending', trigger = 'manual', next_attempt_at = now(), round_attempts = 0,
    round_started_at = now(), status_reason = NULL, finished_at = NULL
WHERE id = $1 AND status <> 'in_flight'
RETURNING id
"""

# A bulk resend: the chosen deliveries that are not in flight and whose endpoint is enabled
# (a deleted one is disabled too); one of an ordered lane waits for its turn, as a recovered
# one does (RECOVER_BATCH says why).
RESEND_MANY = """
UPDATE deliveries d
SET status = CASE WHEN d.lane IS NULL THEN 'pending' ELSE 'waiting' END,
    trigger = 'manual', next_attempt_at = now(), round_attempts = 0, round_started_at = now(),
    status_reason = NULL, finished_at = NULL, holds_lane = false
FROM endpoints e
WHERE d.id = ANY($1::uuid[]) AND d.status <> 'in_flight'
  AND e.id = d.endpoint_id AND e.enabled
RETURNING d.endpoint_id, d.lane IS NOT NULL AS ordered
"""

# What RECOVER_BATCH would take over a whole window: a recovery's dry run.
COUNT_RECOVERABLE = """
SELECT count(*) FROM deliveries
WHERE endpoint_id = $1 AND status = 'failed' AND id >= $2 AND id < $3
"""

# A recovered delivery of an ordered lane waits for its turn (``promote_endpoint_lanes`` then
# sends each lane's first): made pending, a long lane of them would each be looked at, and
# refused, by every claim until they drain.
RECOVER_BATCH = """
WITH picked AS (
    SELECT id FROM deliveries
    WHERE endpoint_id = $1 AND status = 'failed' AND id >= $2 AND id < $3
    ORDER BY id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET status = CASE WHEN d.lane IS NULL THEN 'pending' ELSE 'waiting' END,
    trigger = 'scheduled', next_attempt_at = now(), round_attempts = 0,
    round_started_at = now(), status_reason = NULL, finished_at = NULL, holds_lane = false
FROM picked
WHERE d.id = picked.id
"""

# The first due of each lane, read from its lane's due index (a condition on status alone
# matches neither partial index), as ORDER BY ... LIMIT 1: without statistics the planner
# reads min() as an aggregate over the whole index, where its first entry is the answer.
SECONDS_TO_NEXT_DUE = f"""
SELECT EXTRACT(EPOCH FROM LEAST(
    (SELECT next_attempt_at FROM deliveries WHERE {FIRST_LANE}
     ORDER BY next_attempt_at LIMIT 1),
    (SELECT next_attempt_at FROM deliveries WHERE {RETRY_LANE}
     ORDER BY next_attempt_at LIMIT 1)
) - clock_timestamp())::float8
"""

ATTEMPT_COLUMNS = (
    "id",
    "delivery_id",
    "endpoint_id",
    "tenant_id",
    "attempt_number",
    "trigger",
    "started_at",
    "duration_ms",
    "request_headers",
    "response_status",
    "response_headers",
    "response_body",
    "error_kind",
    "error_message",
    "worker_id",
)


# The records made for every delivery (these three, limits.Candidate, policy.Decision,
# sender.SendResult, attempt.Verdict, worker._Ready) are slotted but not frozen: a frozen
# dataclass sets each field through object.__setattr__, several times the cost of a plain
# one, on the hot path. Nothing changes them once made.
@dataclass(slots=True)
class Claimed:
    """A leased delivery with what sending it needs."""

    id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    tenant_id: uuid.UUID
    event_type: str
    attempt_count: int
    trigger: str
    round_attempts: int
    round_started_at: datetime
    body: bytes
    url: str
    headers: dict[str, str]
    enabled: bool
    deleted: bool
    disabled_reason: str | None
    secrets: list[tuple[uuid.UUID, bytes]]  # the endpoint's live secrets, newest first
    max_in_flight: int
    policy: dict[str, float] | None  # the endpoint's overrides of the settings, if any
    lane: str | None = None  # its ordered lane; None: unordered
    hold: bool = False  # when it fails for good, it holds its lane
    signature_headers: str = "webhook"  # "webhook", "svix" or "both": the headers' names


@dataclass(slots=True)
class AttemptRow:
    """One attempt to log; ``as_record`` gives the COPY row."""

    id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt_number: int
    trigger: str
    started_at: datetime
    duration_ms: int
    request_headers: dict[str, str]
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    error_kind: str | None
    error_message: str | None
    worker_id: str

    def as_record(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.delivery_id,
            self.endpoint_id,
            self.tenant_id,
            self.attempt_number,
            self.trigger,
            self.started_at,
            self.duration_ms,
            orjson.dumps(self.request_headers).decode(),
            self.response_status,
            None if self.response_headers is None else orjson.dumps(self.response_headers).decode(),
            self.response_body,
            self.error_kind,
            self.error_message,
            self.worker_id,
        )


@dataclass(slots=True)
class StateChange:
    """A delivery's new state, made by one of the constructors below; ``last_attempt_at`` is
    None when no attempt was made."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    status: str
    reason: str | None
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error_kind: str | None
    resume_on_enable: bool = False
    lane: str | None = None  # its ordered lane, whose next delivery may go once it finishes
    holds_lane: bool = False  # failed, and holding its lane

    @classmethod
    def attempted(
        cls,
        delivery_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        *,
        status: str,
        reason: str | None,
        attempt_count: int,
        next_attempt_at: datetime | None,
        attempted_at: datetime,
        status_code: int | None,
        error_kind: str | None,
        lane: str | None = None,
        holds_lane: bool = False,
    ) -> "StateChange":
        """After an attempt: succeeded, failed, or pending until ``next_attempt_at``."""
        return cls(
            delivery_id,
            endpoint_id,
            status,
            reason,
            attempt_count,
            next_attempt_at,
            attempted_at,
            status_code,
            error_kind,
            lane=lane,
            holds_lane=holds_lane,
        )

    @classmethod
    def stopped(
        cls, delivery: "Claimed", status: str, reason: str, *, resume_on_enable: bool
    ) -> "StateChange":
        """Ended without an attempt (its endpoint deleted or disabled)."""
        return cls(
            delivery.id,
            delivery.endpoint_id,
            status,
            reason,
            delivery.attempt_count,
            None,
            None,
            None,
            None,
            resume_on_enable=resume_on_enable,
            lane=delivery.lane,
        )

    @classmethod
    def handed_back(cls, delivery: "Claimed", due_at: datetime) -> "StateChange":
        """Back to the queue unsent, due at ``due_at``."""
        return cls(
            delivery.id,
            delivery.endpoint_id,
            "pending",
            None,
            delivery.attempt_count,
            due_at,
            None,
            None,
            None,
            lane=delivery.lane,
        )


@dataclass(frozen=True)
class EndpointHealth:
    """What a batch of attempts says of one endpoint."""

    endpoint_id: uuid.UUID
    succeeded: bool  # some attempt of the batch succeeded
    failures_after: int  # failed attempts after the last success (or in all, without one)


async def claim(
    connection: asyncpg.Connection,
    *,
    free_slots: int,
    retry_slots: int,
    rules: LimitRules,
    lease_s: float,
    worker_id: str,
    holding: Holding,
) -> list[Claimed]:
    """Lease up to ``free_slots`` due deliveries, of which up to ``retry_slots`` retries, and
    of each endpoint what ``holding`` has room for: CLAIM leases those whose endpoint's limits
    allow them all; the rest go through ``limits.plan_claim`` and APPLY_PLAN (a second round
    trip), which leases what the limits allow and pushes back what they refuse."""
    rows = await connection.fetch(
        CLAIM,
        free_slots,
        max(retry_slots, 0),
        lease_s,
        worker_id,
        rules.breaker_threshold,
        list(holding.room),
        [holding.room[endpoint_id] for endpoint_id in holding.room],
        holding.default_room,
        [holding.pace_s.get(endpoint_id, 0.0) for endpoint_id in holding.room],
        rules.defer_s,
    )
    claimed = _claimed(rows)
    endpoints = {row["id"]: row for row in rows if row["kind"] == "endpoint"}
    limited = [
        _candidate(row, endpoints[row["endpoint_id"]], holding)
        for row in rows
        if row["kind"] == "limited"
    ]
    if not limited:
        return claimed
    plan = plan_claim(
        limited,
        free_slots=free_slots - len(claimed),
        retry_slots=retry_slots - sum(1 for delivery in claimed if delivery.round_attempts),
        rules=rules,
    )
    leased = await connection.fetch(
        APPLY_PLAN,
        plan.claim,
        lease_s,
        worker_id,
        list(plan.defer),
        list(plan.defer.values()),
        list(plan.tokens),
        list(plan.tokens.values()),
        plan.probes,
        rules.probe_s,
    )
    return claimed + _claimed(leased)


def _candidate(row: asyncpg.Record, endpoint: asyncpg.Record, holding: Holding) -> Candidate:
    """A "limited" row of CLAIM, with its endpoint's row, as ``plan_claim`` reads it."""
    endpoint_id = row["endpoint_id"]
    others = endpoint["others_held"]
    return Candidate(
        id=row["id"],
        endpoint_id=endpoint_id,
        first=row["first"],
        enabled=endpoint["enabled"],
        room=holding.room_of(endpoint_id) - others,
        pace_s=holding.pace_s.get(endpoint_id, 0.0),
        rate_limit_per_s=endpoint["rate_limit_per_s"],
        rate_tokens=endpoint["rate_tokens"],
        since_refill_s=endpoint["since_refill_s"],
        consecutive_failures=endpoint["consecutive_failures"],
        probe_in_s=endpoint["probe_in_s"],
        held=others + holding.held.get(endpoint_id, 0),
    )


@dataclass(frozen=True)
class _Sending:
    """How to send to one endpoint: made once per endpoint of a claim, shared by its rows."""

    url: str
    headers: dict[str, str]
    enabled: bool
    deleted: bool
    disabled_reason: str | None
    secrets: list[tuple[uuid.UUID, bytes]]
    max_in_flight: int
    policy: dict[str, float] | None
    hold: bool
    body_format: str
    signature_headers: str


def _claimed(rows: list[asyncpg.Record]) -> list[Claimed]:
    """The "leased" rows of CLAIM or APPLY_PLAN, with their endpoints' rows, as what sending
    needs."""
    sending = {
        row["id"]: _Sending(
            url=row["url"],
            headers=orjson.loads(row["headers"]),
            enabled=row["enabled"],
            deleted=row["deleted"],
            disabled_reason=row["disabled_reason"],
            secrets=list(
                zip(row["secret_ids"] or (), row["secret_ciphertexts"] or (), strict=True)
            ),
            max_in_flight=row["max_in_flight"],
            policy=None if row["policy"] is None else orjson.loads(row["policy"]),
            hold=row["hold"],
            body_format=row["body_format"],
            signature_headers=row["signature_headers"],
        )
        for row in rows
        if row["kind"] == "endpoint"
    }
    claimed = []
    for row in rows:
        if row["kind"] != "leased":
            continue
        endpoint = sending[row["endpoint_id"]]
        claimed.append(
            Claimed(
                id=row["id"],
                event_id=row["event_id"],
                endpoint_id=row["endpoint_id"],
                tenant_id=row["tenant_id"],
                event_type=row["event_type"],
                attempt_count=row["attempt_count"],
                trigger=row["trigger"],
                round_attempts=row["round_attempts"],
                round_started_at=row["round_started_at"],
                body=_wire_body(row["body"], endpoint.body_format),
                url=endpoint.url,
                headers=endpoint.headers,
                enabled=endpoint.enabled,
                deleted=endpoint.deleted,
                disabled_reason=endpoint.disabled_reason,
                secrets=endpoint.secrets,
                max_in_flight=endpoint.max_in_flight,
                policy=endpoint.policy,
                lane=row["lane"],
                hold=endpoint.hold,
                signature_headers=endpoint.signature_headers,
            )
        )
    return claimed


# The stored body is ingest.emit.webhook_body's compact JSON, its keys in this order; the
# id, type and timestamp before "data" are hookpost's own text (an event type's name holds no
# quote), so the first ',"data":' is the key, and what follows it, to the last brace, is
# the payload exactly as it was written.
_DATA_KEY = ',"data":'


def _wire_body(body: str, body_format: str) -> bytes:
    """The bytes an attempt sends: the stored body, or its payload alone (``payload``)."""
    if body_format == "payload":
        return body[body.index(_DATA_KEY) + len(_DATA_KEY) : -1].encode()
    return body.encode()


@dataclass(frozen=True)
class Recorded:
    """What a flush changed in endpoints: the rows of those it disabled, and of those whose
    failure streak reached ``breaker_threshold`` with this flush."""

    disabled: list[asyncpg.Record]
    failing: list[asyncpg.Record]


async def record(
    connection: asyncpg.Connection,
    *,
    attempts: Sequence[AttemptRow],
    changes: Sequence[StateChange],
    health: Sequence[EndpointHealth],
    gone: Sequence[uuid.UUID],
    limits: dict[uuid.UUID, int],
    worker_id: str,
    breaker_threshold: int,
    disable_after_s: float,
) -> Recorded:
    """Write a batch of results (group commit), and the endpoints' concurrency ``limits``
    that changed, in the caller's transaction."""
    if attempts:
        await connection.copy_records_to_table(
            "attempts",
            records=[attempt.as_record() for attempt in attempts],
            columns=ATTEMPT_COLUMNS,
        )
    if changes:
        succeeded = sum(1 for attempt in attempts if attempt.error_kind is None)
        await connection.execute(
            UPDATE_DELIVERIES,
            [c.delivery_id for c in changes],
            [c.status for c in changes],
            [c.reason for c in changes],
            [c.attempt_count for c in changes],
            [c.next_attempt_at for c in changes],
            [c.last_attempt_at for c in changes],
            [c.last_status_code for c in changes],
            [c.last_error_kind for c in changes],
            worker_id,
            [c.resume_on_enable for c in changes],
            succeeded,
            len(attempts) - succeeded,
            [c.holds_lane for c in changes],
        )

    failing: list[asyncpg.Record] = []
    if health:
        rows = await connection.fetch(
            UPDATE_ENDPOINT_HEALTH,
            [h.endpoint_id for h in health],
            [h.succeeded for h in health],
            [h.failures_after for h in health],
        )
        failing = [
            row
            for row in rows
            if row["failures_before"] < breaker_threshold <= row["consecutive_failures"]
        ]
    if limits:
        await connection.execute(REPORT_LIMITS, list(limits), list(limits.values()))

    failed_endpoints = [h.endpoint_id for h in health if h.failures_after]
    disabled: list[asyncpg.Record] = []
    if gone or failed_endpoints:
        disabled = await connection.fetch(
            DISABLE_ENDPOINTS,
            list(gone),
            failed_endpoints,
            f"{disable_after_s:g}",
            disable_after_s,
        )
        for row in disabled:
            await pause_deliveries(connection, row["id"], row["disabled_reason"])
    return Recorded(disabled=disabled, failing=failing)


_FINISHED = frozenset({"succeeded", "failed", "cancelled"})


async def pause_deliveries(
    connection: asyncpg.Connection, endpoint_id: uuid.UUID, reason: str
) -> int:
    """Stop a disabled endpoint's pending deliveries (failed, to resume on enabling)."""
    return rows_affected(await connection.execute(PAUSE_DELIVERIES, endpoint_id, reason))


async def resume_deliveries(connection: asyncpg.Connection, endpoint_id: uuid.UUID) -> int:
    """Queue again what disabling the endpoint stopped, and wake the workers."""
    count = rows_affected(await connection.execute(RESUME_DELIVERIES, endpoint_id))
    if count:
        await connection.execute(PROMOTE_ENDPOINT_LANES, endpoint_id)
        await connection.execute(NOTIFY)
    return count


def finished_lanes(changes: Sequence[StateChange]) -> set[tuple[uuid.UUID, str]]:
    """The ordered lanes (endpoint, lane) in which ``changes`` finished a delivery."""
    return {
        (c.endpoint_id, c.lane) for c in changes if c.lane is not None and c.status in _FINISHED
    }


async def promote_lanes(
    database: asyncpg.Connection | asyncpg.Pool, lanes: Collection[tuple[uuid.UUID, str]]
) -> int:
    """Make pending the first delivery of each of ``lanes`` where it waits with nothing
    before it, and wake the workers. Run it after the transaction that finished a delivery
    of the lane, or stored one waiting in it, has committed: a look from inside either could
    miss the other (``emit.send_lanes_on``)."""
    promoted = rows_affected(
        await database.execute(
            PROMOTE_LANE_HEADS, [endpoint for endpoint, _ in lanes], [lane for _, lane in lanes]
        )
    )
    if promoted:
        await database.execute(NOTIFY)
    return promoted


async def promote_endpoint_lanes(connection: asyncpg.Connection, endpoint_id: uuid.UUID) -> int:
    """Send on each lane of the endpoint whose first delivery waits (after its recovery has
    committed, as ``promote_lanes`` says why)."""
    promoted = rows_affected(await connection.execute(PROMOTE_ENDPOINT_LANES, endpoint_id))
    if promoted:
        await connection.execute(NOTIFY)
    return promoted


async def promote_stranded(connection: asyncpg.Connection) -> int:
    """Make pending the first delivery of each lane that waits with nothing before it."""
    return rows_affected(await connection.execute(PROMOTE_STRANDED))


async def dissolve_lanes(connection: asyncpg.Connection, endpoint_id: uuid.UUID) -> None:
    """The endpoint is no longer ordered: its waiting deliveries go, as unordered ones."""
    if rows_affected(await connection.execute(DISSOLVE_LANES, endpoint_id)):
        await connection.execute(NOTIFY)


async def cancel_waiting(connection: asyncpg.Connection, endpoint_id: uuid.UUID) -> int:
    """End the deliveries waiting in a deleted endpoint's lanes."""
    return rows_affected(await connection.execute(CANCEL_WAITING, endpoint_id))


async def release_holds(connection: asyncpg.Connection, endpoint_id: uuid.UUID) -> None:
    """The endpoint's lanes no longer wait behind failed deliveries."""
    if rows_affected(await connection.execute(RELEASE_HOLDS, endpoint_id)):
        await connection.execute(PROMOTE_ENDPOINT_LANES, endpoint_id)
        await connection.execute(NOTIFY)


async def recover_expired(connection: asyncpg.Connection) -> int:
    status = await connection.execute(RECOVER_EXPIRED)
    return rows_affected(status)


async def heartbeat(connection: asyncpg.Connection, worker_id: str) -> None:
    await connection.execute(HEARTBEAT, worker_id)


async def take_back_from_dead(connection: asyncpg.Connection, dead_after_s: float) -> int:
    """Forget the workers whose heartbeat stopped ``dead_after_s`` ago, and put what they held
    back in the queue; the deliveries taken back."""
    async with connection.transaction():
        dead = [row["id"] for row in await connection.fetch(FORGET_DEAD_WORKERS, dead_after_s)]
        if not dead:
            return 0
        await connection.execute("SET LOCAL enable_seqscan = off")
        return rows_affected(await connection.execute(TAKE_BACK, dead))


async def sign_off(connection: asyncpg.Connection, worker_id: str) -> None:
    await connection.execute(SIGN_OFF, worker_id)


async def release(
    connection: asyncpg.Connection, delivery_ids: Sequence[uuid.UUID], worker_id: str
) -> int:
    status = await connection.execute(RELEASE, list(delivery_ids), worker_id)
    return rows_affected(status)


async def resend(connection: asyncpg.Connection, delivery_id: uuid.UUID) -> bool:
    """Queue ``delivery_id`` now and wake the workers; False if it is in flight."""
    queued = await connection.fetchval(RESEND, delivery_id)
    if queued is not None:
        await connection.execute(NOTIFY)
    return queued is not None


async def resend_many(
    connection: asyncpg.Connection, delivery_ids: list[uuid.UUID]
) -> tuple[int, set[uuid.UUID]]:
    """Queue those of ``delivery_ids`` that can go now; how many, and the endpoints whose
    ordered lanes must be promoted once this commits."""
    rows = await connection.fetch(RESEND_MANY, delivery_ids)
    if rows:
        await connection.execute(NOTIFY)
    return len(rows), {row["endpoint_id"] for row in rows if row["ordered"]}


async def count_recoverable(
    connection: asyncpg.Connection, endpoint_id: uuid.UUID, *, after: uuid.UUID, before: uuid.UUID
) -> int:
    """How many failed deliveries of ``endpoint_id`` with ids in ``[after, before)`` a recovery
    would queue."""
    count: int = await connection.fetchval(COUNT_RECOVERABLE, endpoint_id, after, before)
    return count


async def recover_batch(
    connection: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    *,
    after: uuid.UUID,
    before: uuid.UUID,
    limit: int,
) -> int:
    """Put up to ``limit`` failed deliveries of ``endpoint_id`` with ids in ``[after, before)``
    back in the queue and wake the workers; how many."""
    status = await connection.execute(RECOVER_BATCH, endpoint_id, after, before, limit)
    count = rows_affected(status)
    if count:
        await connection.execute(NOTIFY)
    return count


async def seconds_to_next_due(connection: asyncpg.Connection) -> float | None:
    """Seconds until the earliest pending delivery is due (negative: overdue); None if none."""
    value: float | None = await connection.fetchval(SECONDS_TO_NEXT_DUE)
    return value
