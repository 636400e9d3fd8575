"""The validation processes: requests share frames, and a slow one fails alone."""

import asyncio

import orjson
import pytest

from hookpost.ingest.validation import PayloadError, ValidationTimeout, Validator

SLOW = orjson.dumps(
    {
        "$defs": {f"a{i}": {"anyOf": [{"$ref": f"#/$defs/a{i + 1}"}] * 2} for i in range(60)}
        | {"a60": {"type": "string"}},
        "$ref": "#/$defs/a0",
    }
).decode()
POSITIVE = '{"type": "integer", "minimum": 0}'


async def test_concurrent_requests_share_a_frame_each_with_its_own_answer() -> None:
    validator = Validator(timeout_s=5, processes=1)
    try:
        answers = await asyncio.gather(
            *(validator.payload_errors(POSITIVE, [n, -n - 1]) for n in range(20))
        )
        assert validator.frames < 20
        for answer in answers:
            assert answer[0] is None
            assert isinstance(answer[1], PayloadError)
            assert "minimum" in answer[1].message
    finally:
        await validator.close()


async def test_a_slow_request_in_a_shared_frame_fails_alone() -> None:
    validator = Validator(timeout_s=0.5, processes=1)
    try:
        slow, fast, other = await asyncio.gather(
            validator.payload_errors(SLOW, [1]),
            validator.payload_errors(POSITIVE, [1]),
            validator.payload_errors(POSITIVE, [-1]),
            return_exceptions=True,
        )
        assert isinstance(slow, ValidationTimeout)
        assert fast == [None]
        assert isinstance(other, list)
        assert isinstance(other[0], PayloadError)
        assert validator.timeouts == 1
        assert await validator.payload_errors(SLOW, ["a string matches at once"]) == [None]
    finally:
        await validator.close()


async def test_closing_fails_what_waits() -> None:
    validator = Validator(timeout_s=5, processes=1)
    waiting = asyncio.ensure_future(validator.payload_errors(SLOW, [1]))
    await asyncio.sleep(0)
    await validator.close()
    with pytest.raises(Exception, match="validation stopped"):
        await waiting
