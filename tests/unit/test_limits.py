"""What a claim takes and what it pushes back: endpoint limits, the breaker, the lanes."""

import uuid
from dataclasses import replace

from hookpost.delivery.limits import Candidate, LimitRules, plan_claim

RULES = LimitRules(breaker_threshold=3, probe_s=30.0, defer_s=0.25)
EP_A, EP_B = uuid.UUID(int=1), uuid.UUID(int=2)


def _candidates(endpoint: uuid.UUID, count: int, **fields: object) -> list[Candidate]:
    base = Candidate(
        id=uuid.UUID(int=0),
        endpoint_id=endpoint,
        first=True,
        enabled=True,
        room=10,
        pace_s=0.0,
        rate_limit_per_s=None,
        rate_tokens=None,
        since_refill_s=None,
        consecutive_failures=0,
        probe_in_s=None,
        held=0,
    )
    return [replace(base, id=uuid.uuid4(), **fields) for _ in range(count)]  # type: ignore[arg-type]


def test_an_endpoints_room_defers_the_rest() -> None:
    cands = _candidates(EP_A, 6, room=2, held=1) + _candidates(EP_B, 2)
    plan = plan_claim(cands, free_slots=100, retry_slots=100, rules=RULES)
    assert plan.claim == [c.id for c in cands[:2]] + [c.id for c in cands[6:]]
    assert plan.defer == {c.id: 0.25 for c in cands[2:6]}


def test_deferred_deliveries_of_a_slow_endpoint_wait_their_turn_at_its_pace() -> None:
    cands = _candidates(EP_A, 4, room=1, pace_s=2.0)
    plan = plan_claim(cands, free_slots=100, retry_slots=100, rules=RULES)
    assert plan.claim == [cands[0].id]
    assert [plan.defer[c.id] for c in cands[1:]] == [2.0, 4.0, 6.0]


def test_rate_limit_spends_tokens_and_spaces_the_rest() -> None:
    cands = _candidates(EP_A, 5, rate_limit_per_s=2, rate_tokens=0.5, since_refill_s=0.5)
    plan = plan_claim(cands, free_slots=100, retry_slots=100, rules=RULES)
    # 0.5 + 0.5 s * 2/s = 1.5 tokens: one goes now, the others wait for their tokens
    assert plan.claim == [cands[0].id]
    assert plan.tokens == {EP_A: 0.5}
    assert [round(plan.defer[c.id], 2) for c in cands[1:]] == [0.25, 0.75, 1.25, 1.75]


def test_a_fresh_bucket_allows_one_second_of_burst() -> None:
    cands = _candidates(EP_A, 8, rate_limit_per_s=5)
    plan = plan_claim(cands, free_slots=100, retry_slots=100, rules=RULES)
    assert len(plan.claim) == 5
    assert plan.tokens == {EP_A: 0.0}


def test_an_open_breaker_lets_one_probe_through_then_waits() -> None:
    cands = _candidates(EP_A, 4, consecutive_failures=3)
    plan = plan_claim(cands, free_slots=100, retry_slots=100, rules=RULES)
    assert plan.claim == [cands[0].id]
    assert plan.probes == [EP_A]
    assert set(plan.defer.values()) == {30.0}

    waiting = _candidates(EP_A, 2, consecutive_failures=3, probe_in_s=12.0)
    plan = plan_claim(waiting, free_slots=100, retry_slots=100, rules=RULES)
    assert plan.claim == []
    assert set(plan.defer.values()) == {12.0}

    busy = _candidates(EP_A, 2, consecutive_failures=3, probe_in_s=-1.0, held=1)
    assert plan_claim(busy, free_slots=100, retry_slots=100, rules=RULES).claim == []


def test_a_closed_breaker_does_not_limit() -> None:
    cands = _candidates(EP_A, 4, consecutive_failures=2)
    assert len(plan_claim(cands, free_slots=100, retry_slots=100, rules=RULES).claim) == 4


def test_retries_cannot_take_the_first_attempts_lane() -> None:
    retries = _candidates(EP_A, 10, first=False)
    firsts = _candidates(EP_B, 10)
    plan = plan_claim(retries + firsts, free_slots=8, retry_slots=3, rules=RULES)
    assert plan.claim == [c.id for c in retries[:3]] + [c.id for c in firsts[:5]]
    assert plan.defer == {}  # a full lane leaves its deliveries due, untouched


def test_free_slots_bound_the_claim_and_disabled_endpoints_are_taken_to_stop() -> None:
    cands = _candidates(EP_A, 20, enabled=False, room=1)
    plan = plan_claim(cands, free_slots=7, retry_slots=7, rules=RULES)
    assert len(plan.claim) == 7
