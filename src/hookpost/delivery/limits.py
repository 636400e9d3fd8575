"""Which due deliveries a claim takes, and which it pushes back: per-endpoint limits that
defer instead of block, the circuit breaker, and the lanes that keep first attempts from being
starved by retries. A pure function of the candidates the queue found, so each rule is
checked by tests without a database.

- room: how many more deliveries of an endpoint the claiming worker may lease (what its
  gates would hold, less what it and the other workers hold: ``gates.Holding``); the rest wait
  in the queue, holding no worker slot and no connection, the n-th of them n deliveries' time
  at the endpoint's pace (at least ``defer_s``). The requests open at once are the gates'.
- ``rate_limit_per_s``: a token bucket per endpoint (one second of burst); deliveries beyond
  the tokens are pushed back to when their token will be there.
- circuit breaker: an endpoint with ``breaker_threshold`` failures in a row is probed by one
  attempt at a time, at most every ``probe_s``; its other deliveries wait for the probe. A
  success closes it (the failure streak resets).
- lanes: retries may fill at most ``retry_slots`` of a worker's slots, so first attempts
  always find room.
"""

import math
import uuid
from dataclasses import dataclass, field


@dataclass(slots=True)  # not frozen: made per delivery (queue.Claimed says why)
class Candidate:
    """A due delivery, with what the queue knows of its endpoint."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    first: bool  # first attempt of its round (else a retry)
    enabled: bool
    room: int  # how many more of its deliveries this worker may lease now
    pace_s: float  # seconds a delivery of the endpoint takes, as far as this worker knows
    rate_limit_per_s: int | None
    rate_tokens: float | None
    since_refill_s: float | None
    consecutive_failures: int
    probe_in_s: float | None  # seconds until the breaker may probe (<= 0: now); None: never set
    held: int  # its deliveries leased now, over all workers


@dataclass(frozen=True)
class LimitRules:
    breaker_threshold: int
    probe_s: float
    defer_s: float


@dataclass
class ClaimPlan:
    claim: list[uuid.UUID] = field(default_factory=list)
    defer: dict[uuid.UUID, float] = field(default_factory=dict)  # delivery -> seconds
    tokens: dict[uuid.UUID, float] = field(default_factory=dict)  # endpoint -> bucket after
    probes: list[uuid.UUID] = field(default_factory=list)  # endpoints probed now


@dataclass
class _Endpoint:
    allowance: float  # how many more may be claimed now
    tokens: float | None  # the bucket after this claim, for rate-limited endpoints
    breaker_open: bool
    claimed: int = 0
    refused: int = 0


def _endpoint(candidate: Candidate, rules: LimitRules) -> _Endpoint:
    if not candidate.enabled:  # claimed only to be stopped: no request is sent
        return _Endpoint(allowance=math.inf, tokens=None, breaker_open=False)
    if candidate.consecutive_failures >= rules.breaker_threshold:
        probe_due = candidate.probe_in_s is None or candidate.probe_in_s <= 0
        probe_now = probe_due and candidate.held == 0
        return _Endpoint(allowance=1 if probe_now else 0, tokens=None, breaker_open=True)
    allowance: float = max(candidate.room, 0)
    tokens = None
    rate = candidate.rate_limit_per_s
    if rate is not None:
        held = rate if candidate.rate_tokens is None else candidate.rate_tokens
        tokens = min(float(rate), held + (candidate.since_refill_s or 0.0) * rate)
        allowance = min(allowance, math.floor(tokens))
    return _Endpoint(allowance=allowance, tokens=tokens, breaker_open=False)


def plan_claim(
    candidates: list[Candidate], *, free_slots: int, retry_slots: int, rules: LimitRules
) -> ClaimPlan:
    """Take candidates in due order while the worker has slots, each lane has room and each
    endpoint's limits allow; push back those an endpoint limit refused."""
    plan = ClaimPlan()
    endpoints: dict[uuid.UUID, _Endpoint] = {}
    for candidate in candidates:
        if len(plan.claim) >= free_slots:
            break
        if not candidate.first and retry_slots <= 0:
            continue  # the retry lane is full: the delivery stays due, untouched
        state = endpoints.get(candidate.endpoint_id)
        if state is None:
            state = endpoints[candidate.endpoint_id] = _endpoint(candidate, rules)
        if state.claimed < state.allowance:
            state.claimed += 1
            plan.claim.append(candidate.id)
            if not candidate.first:
                retry_slots -= 1
            continue
        plan.defer[candidate.id] = _delay(candidate, state, rules)
    for endpoint_id, state in endpoints.items():
        if state.tokens is not None and state.claimed:
            plan.tokens[endpoint_id] = state.tokens - state.claimed
        if state.breaker_open and state.claimed:
            plan.probes.append(endpoint_id)
    return plan


def _delay(candidate: Candidate, state: _Endpoint, rules: LimitRules) -> float:
    """How long a refused delivery waits before it is looked at again."""
    if state.breaker_open:
        if candidate.probe_in_s is not None and candidate.probe_in_s > 0:
            return max(candidate.probe_in_s, rules.defer_s)
        return rules.probe_s
    rate = candidate.rate_limit_per_s
    if rate is not None and state.tokens is not None:
        # the n-th refused delivery of this endpoint waits for the n-th token from now
        state.refused += 1
        left = state.tokens - state.claimed
        return max((state.refused - left) / rate, rules.defer_s)
    # the n-th refused delivery waits for n deliveries at the endpoint's pace
    state.refused += 1
    return max(state.refused * candidate.pace_s, rules.defer_s)
