"""An endpoint whose ``body_format`` is ``payload`` is sent the payload alone, cut from the
stored body: for any payload (generated), the bytes are the payload exactly as the stored
body wrote it, whatever the event type's name."""

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from hookpost import jsonvalue
from hookpost.admin.event_types import NAME_PATTERN
from hookpost.delivery.queue import _wire_body
from hookpost.ingest.emit import body_timestamp, webhook_body

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    payload=st.dictionaries(st.text(), JSON, max_size=5),
    event_type=st.from_regex(NAME_PATTERN, fullmatch=True),
)
def test_the_payload_alone_is_the_payload_as_stored(
    payload: dict[str, object], event_type: str
) -> None:
    body = webhook_body(uuid.uuid4(), event_type, body_timestamp(datetime.now(UTC)), payload)
    assert _wire_body(body, "payload") == jsonvalue.dumps(payload)
    assert _wire_body(body, "envelope") == body.encode()
