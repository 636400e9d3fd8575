"""JSON Schemas as hookpost applies them, and the loop of the process that applies them.

Schemas compile with jsonschema-rs: patterns on a linear-time regex engine, no remote
references fetched, formats not asserted. ``serve`` answers a parent's requests on its
standard input and output; ``validation.py`` runs it as a child process under a time bound.
"""

import struct
import sys
from functools import lru_cache
from typing import Any, BinaryIO, ClassVar

import jsonschema_rs
import orjson

from hookpost.errors import HookpostError

FRAME = struct.Struct(">I")  # each message: its length, then that many bytes of JSON

_REGEX_ADVICE = (
    "patterns run on a linear-time engine, which has no lookaround or backreferences "
    "and bounds a compiled pattern's size"
)


class UnusableSchema(HookpostError, ValueError):
    """A schema that hookpost cannot apply; the message says where and why."""

    code: ClassVar[str] = "invalid_schema"


def _place(path: list[str | int]) -> str:
    return ".".join(["schema", *(str(part) for part in path)])


@lru_cache(maxsize=256)
def compiled(schema_json: str) -> jsonschema_rs.Validator:
    """The validator for a schema given as JSON text; raises ``UnusableSchema``."""
    try:
        return jsonschema_rs.validator_for(
            orjson.loads(schema_json),
            pattern_options=jsonschema_rs.RegexOptions(),
            offline=True,  # a $ref to a URL is never fetched: it would reach any host
            validate_formats=False,  # "format" annotates, as JSON Schema 2020-12 says
        )
    except jsonschema_rs.ValidationError as error:
        message = error.message
        if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Format):
            message += f" ({_REGEX_ADVICE})"
        place = _place(list(error.instance_path))
        raise UnusableSchema(f"{place}: {message}") from None
    except (jsonschema_rs.ReferencingError, ValueError) as error:
        raise UnusableSchema(f"schema: {error}") from None


def schema_error(schema_json: str) -> str | None:
    """Why a schema cannot be used, or None."""
    try:
        compiled(schema_json)
    except UnusableSchema as error:
        return str(error)
    return None


def payload_errors(schema_json: str, payloads: list[Any]) -> list[list[Any] | None]:
    """For each payload, ``[path, message]`` of the first place where it breaks the schema,
    or None where it matches. Raises ``UnusableSchema``."""
    validator = compiled(schema_json)
    errors: list[list[Any] | None] = []
    for payload in payloads:
        error = next(iter(validator.iter_errors(payload)), None)
        errors.append(None if error is None else [list(error.instance_path), error.message])
    return errors


def answer(request: list[Any]) -> dict[str, Any]:
    """The answer to one request: ``["check", schema]`` or ``["validate", schema, payloads]``."""
    kind, schema_json, *rest = request
    if kind == "check":
        return {"schema_error": schema_error(schema_json)}
    try:
        return {"schema_error": None, "errors": payload_errors(schema_json, rest[0])}
    except UnusableSchema as error:
        return {"schema_error": str(error)}


def read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(FRAME.size)
    if len(header) < FRAME.size:
        return None
    (size,) = FRAME.unpack(header)
    return stream.read(size)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer frames (each a list of requests) until the parent closes its end."""
    while (frame := read_frame(requests)) is not None:
        data = orjson.dumps([answer(request) for request in orjson.loads(frame)])
        answers.write(FRAME.pack(len(data)) + data)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
