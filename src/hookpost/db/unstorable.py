"""What Postgres cannot store, found before it is sent: NUL (U+0000) in text (``text`` and
``jsonb`` refuse it), a lone surrogate (U+D800 to U+DFFF: no UTF-8 encodes it, so asyncpg
cannot send it; JSON's ``"\\ud800"`` parses into one).

The API's schemas refuse such values at the edge with a 422 naming their place; the intake
names the place in a payload that cannot be encoded."""

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def refusal(text: str, *, keep_nul: bool = False) -> str | None:
    """Why Postgres cannot store ``text``, or None when it can; with ``keep_nul``, NUL is let
    through (the text JSON of a payload holds it escaped)."""
    found = (_SURROGATE if keep_nul else _UNSTORABLE).search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"holds a NUL character (U+0000) at position {found.start()}"
    return (
        f"holds a lone surrogate (U+{ord(found.group()):04X}) at position {found.start()}, "
        "which is not Unicode text"
    )


def json_refusal(value: Any, *, keep_nul: bool) -> tuple[list[str | int], str] | None:
    """A place in a JSON value where a string, or a key of the object there, cannot be stored,
    and why ("the text holds ...", "a key holds ..."); None when all can. ``keep_nul`` as for
    ``refusal``: text JSON keeps NUL escaped, ``jsonb`` refuses it."""
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if (reason := refusal(item, keep_nul=keep_nul)) is not None:
                return path, f"the text {reason}"
        elif isinstance(item, dict):
            for key in item:
                if (reason := refusal(key, keep_nul=keep_nul)) is not None:
                    return path, f"a key {reason}"  # the key itself may not be quoted
            stack.extend(([*path, key], inner) for key, inner in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(
                ([*path, index], inner) for index, inner in reversed(list(enumerate(item)))
            )
    return None
