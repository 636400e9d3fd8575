"""What a receiver sends, made storable before it is kept: any byte, header, size or count
comes back as text Postgres accepts (``text`` and ``jsonb`` refuse NUL, and UTF-8 cannot carry
a lone surrogate), within caps that bound an attempt row whatever the receiver does."""

from collections.abc import Iterable

REPLACEMENT = "\ufffd"
MAX_HEADERS = 64  # response headers kept per attempt; the rest are counted, not kept
MAX_HEADER_NAME = 128  # characters of a header's name kept
MAX_HEADER_VALUE = 1024  # characters of a header's value kept
MAX_HEADERS_TOTAL = 8192  # characters of all kept names and values together
MAX_MESSAGE = 1000  # characters of an error message kept
DROPPED_HEADERS = "x-hookpost-dropped-headers"  # how many headers were not kept


def text(value: str, cap: int | None = None) -> str:
    """``value`` as Postgres can store it: bytes that were not UTF-8 (which aiohttp hands on as
    surrogate escapes) and lone surrogates become U+FFFD, so does NUL; cut to ``cap``."""
    if cap is not None and len(value) > cap:
        value = value[:cap]
    try:
        value.encode()
    except UnicodeEncodeError:
        errors = "surrogateescape" if _escapes_only(value) else "replace"
        value = value.encode("utf-8", errors).decode("utf-8", "replace")
    return value.replace("\x00", REPLACEMENT)


def _escapes_only(value: str) -> bool:
    """True when every surrogate in ``value`` is a surrogate escape (U+DC80 to U+DCFF): bytes
    that can be given back and decoded with replacement characters."""
    return all(not 0xD800 <= ord(char) <= 0xDFFF or 0xDC80 <= ord(char) <= 0xDCFF for char in value)


def body(content: bytes) -> str:
    """A response body (already capped in bytes) as storable text."""
    return content.decode("utf-8", "replace").replace("\x00", REPLACEMENT)


def headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers as the log keeps them: names lower-cased, a repeated name's values
    joined with ", " (RFC 9110), each name and value storable and capped, at most
    ``MAX_HEADERS`` of them within ``MAX_HEADERS_TOTAL`` characters; how many were dropped is
    kept under ``DROPPED_HEADERS``."""
    kept: dict[str, str] = {}
    size = 0
    dropped = 0
    for raw_name, raw_value in items:
        name = text(raw_name, MAX_HEADER_NAME).lower()
        value = text(raw_value, MAX_HEADER_VALUE)
        if name in kept:
            joined = f"{kept[name]}, {value}"[:MAX_HEADER_VALUE]
            size += len(joined) - len(kept[name])
            kept[name] = joined
            continue
        if len(kept) >= MAX_HEADERS or size + len(name) + len(value) > MAX_HEADERS_TOTAL:
            dropped += 1
            continue
        kept[name] = value
        size += len(name) + len(value)
    if dropped:
        kept[DROPPED_HEADERS] = str(dropped)
    return kept


def message(value: str) -> str:
    """An error message, which may quote what the receiver sent, as storable text."""
    return text(value, MAX_MESSAGE)
