"""Payload validation against an event type's JSON Schema, with compiled validators cached."""

from functools import lru_cache
from typing import Any

import orjson
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for


@lru_cache(maxsize=1024)
def _compiled(schema_json: bytes) -> Validator:
    schema = orjson.loads(schema_json)
    validator: Validator = validator_for(schema)(schema)
    return validator


def payload_error(schema: dict[str, Any], payload: Any) -> tuple[list[str | int], str] | None:
    """Where and why ``payload`` breaks ``schema`` (the most relevant error), or None."""
    validator = _compiled(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    error = best_match(validator.iter_errors(payload))
    if error is None:
        return None
    return list(error.absolute_path), error.message
