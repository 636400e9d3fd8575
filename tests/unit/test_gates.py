"""Per-endpoint gates: requests open under the limit, endpoints in turn, and a limit that is
earned by successes and cut by overload."""

import asyncio
import time
import uuid

import pytest

from hookpost.delivery.gates import INITIAL_LIMIT, UNKNOWN_HOLD, Gate, Gates, Signal, signal_of
from hookpost.delivery.sender import ErrorKind, SendResult

EP_A, EP_B = uuid.UUID(int=1), uuid.UUID(int=2)


def _gate(ceiling: int = 10) -> Gate[str]:
    return Gate(EP_A, ceiling, limit=min(INITIAL_LIMIT, ceiling))


def test_slow_start_then_additive_increase_up_to_the_ceiling() -> None:
    gate = _gate(ceiling=10)
    for _ in range(3):
        gate.learn(Signal.SUCCESS, 0.001, started_at=1.0)
    assert gate.current_limit == 5  # one more a success while it has never been cut
    gate.learn(Signal.OVERLOAD, 5.0, started_at=2.0)
    assert gate.current_limit == 2
    for _ in range(2):  # one limit's worth of successes adds one
        gate.learn(Signal.SUCCESS, 0.001, started_at=3.0)
    assert gate.current_limit == 3
    for _ in range(200):
        gate.learn(Signal.SUCCESS, 0.001, started_at=3.0)
    assert gate.current_limit == 10  # never above max_in_flight


def test_one_cut_for_the_requests_sent_under_one_limit() -> None:
    gate = _gate(ceiling=64)
    for _ in range(62):
        gate.learn(Signal.SUCCESS, 0.001, started_at=1.0)
    assert gate.current_limit == 64
    for _ in range(64):  # every open request times out: the limit halves once, not 64 times
        gate.learn(Signal.OVERLOAD, 5.0, started_at=1.5)
    assert gate.current_limit == 32
    gate.learn(Signal.OVERLOAD, 5.0, started_at=7.0)  # sent after the cut: cut again
    assert gate.current_limit == 16
    for _ in range(10):
        gate.learn(Signal.OVERLOAD, 5.0, started_at=8.0 + _)
    assert gate.current_limit == 1  # never below one


def test_what_an_attempt_says_of_capacity() -> None:
    assert signal_of(SendResult(duration_ms=1, status_code=204)) is Signal.SUCCESS
    for status in (429, 502, 503, 504):
        assert signal_of(SendResult(duration_ms=1, status_code=status)) is Signal.OVERLOAD
    for status in (400, 404, 500, 410):
        assert signal_of(SendResult(duration_ms=1, status_code=status)) is Signal.NEUTRAL
    for kind in (ErrorKind.TIMEOUT, ErrorKind.CONNECT, ErrorKind.DNS, ErrorKind.TLS):
        assert signal_of(SendResult(duration_ms=1, error_kind=kind)) is Signal.OVERLOAD
    blocked = SendResult(duration_ms=0, error_kind=ErrorKind.BLOCKED_DESTINATION)
    assert signal_of(blocked) is Signal.NEUTRAL


def test_the_hold_is_a_second_of_work_at_the_endpoints_pace() -> None:
    gate = _gate(ceiling=10)
    assert gate.hold(now=0.0, most=700) == UNKNOWN_HOLD  # no attempt has finished yet
    gate.limit = 10
    gate.latency_s = 0.5  # 10 open at 0.5 s each: 20 a second
    assert gate.hold(now=0.0, most=700) == 20
    gate.latency_s = 0.001
    assert gate.hold(now=0.0, most=700) == 700
    gate.limit, gate.latency_s = 1, 0.001
    gate.opened[1] = 100.0  # a request open for 4 s: the endpoint hangs, whatever it averaged
    assert gate.hold(now=104.0, most=700) == 1


async def test_requests_open_stay_under_the_limit_and_endpoints_take_turns() -> None:
    gates: Gates[str] = Gates()
    now = time.monotonic()
    for n in range(6):
        gates.add(EP_A, 10, f"a{n}", now)
    gates.add(EP_B, 10, "b0", now)
    taken = [await gates.take() for _ in range(3)]
    # A's limit starts at 2; B has its turn between A's two
    assert [item for _, _, item in taken] == ["a0", "b0", "a1"]
    assert gates.open == 3
    assert (gates.get(EP_A) or _gate()).open == 2
    third = asyncio.ensure_future(gates.take())
    await asyncio.sleep(0)
    assert not third.done()  # A is at its limit, B has nothing
    gate, token, _ = taken[0]
    gates.finish(gate, token, Signal.SUCCESS, 0.001)  # a success: limit 3, two rooms free
    assert (await third)[2] == "a2"
    assert gates.waiting == 3
    assert gates.open == 3


async def test_waiting_deliveries_leased_long_ago_come_out() -> None:
    gates: Gates[str] = Gates()
    gates.add(EP_A, 1, "old", 10.0)
    gates.add(EP_A, 1, "new", 20.0)
    assert gates.expired(leased_before=15.0) == ["old"]
    assert gates.take_all_waiting() == ["new"]
    assert gates.waiting == 0


@pytest.mark.parametrize("ceiling", [1, 2, 10])
def test_the_limit_starts_low_and_within_the_ceiling(ceiling: int) -> None:
    gates: Gates[str] = Gates()
    gates.add(EP_A, ceiling, "x", 0.0)
    gate = gates.get(EP_A)
    assert gate is not None
    assert gate.current_limit == min(INITIAL_LIMIT, ceiling)


async def test_idle_gates_at_their_ceiling_are_forgotten_and_cut_ones_kept() -> None:
    gates: Gates[str] = Gates()
    gates.add(EP_A, 2, "a", 0.0)
    gates.add(EP_B, 10, "b", 0.0)
    for _ in range(2):
        gate, token, _ = await gates.take()
        signal = Signal.SUCCESS if gate.endpoint_id == EP_A else Signal.OVERLOAD
        gates.finish(gate, token, signal, 0.001)
    gates.forget_idle()
    assert gates.get(EP_A) is None  # nothing held, back at its ceiling
    kept = gates.get(EP_B)
    assert kept is not None  # its cut limit is remembered
    assert kept.current_limit == 1
