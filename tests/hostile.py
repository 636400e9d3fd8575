"""A hostile receiver: a raw-socket server on 127.0.0.1 whose answers hypothesis draws, byte by
byte. Status lines, header names and value bytes, bodies with any byte, sizes and counts,
``Retry-After`` in every form, framing that lies, answers cut short or that never come.

``answers()`` draws an ``Answer``; ``HostileReceiver`` answers each request on a path with the
answers set for that path, in turn, and counts the requests it read."""

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import strategies as st


@dataclass(frozen=True)
class Answer:
    """What the receiver does with one request."""

    head: bytes  # the status line and the headers, each line ending in CRLF
    body: bytes
    framing: str  # "length" (true Content-Length), "lying" (a wrong one), "chunked", "close"
    cut_at: float | None = None  # a share of the bytes after which the connection is closed
    delay_s: float = 0.0  # before answering
    silent: bool = False  # closes without a byte


def _line(value: bytes) -> bytes:
    return value.replace(b"\r", b"").replace(b"\n", b"")


TOKEN = st.text(
    alphabet=st.sampled_from(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~"
    ),
    min_size=1,
    max_size=40,
).map(str.encode)
# Each strategy's well-formed forms are listed more than once: answers a parser takes reach
# the storing code, which is where a receiver's bytes can hurt.
HEADER_NAME = st.one_of(
    TOKEN,
    TOKEN,
    TOKEN,
    st.sampled_from([b"retry-after", b"location", b"set-cookie", b"content-type"]),
    st.binary(min_size=1, max_size=30).map(_line).filter(lambda name: b":" not in name and name),
)
# Visible ASCII and obs-text (0x80 to 0xFF): what an HTTP parser lets through, not UTF-8 as a
# rule; raw bytes beside them, which a parser may refuse.
OBS_TEXT = st.lists(
    st.one_of(st.integers(0x20, 0x7E), st.integers(0x80, 0xFF)), min_size=1, max_size=200
).map(bytes)
HEADER_VALUE = st.one_of(
    OBS_TEXT,
    OBS_TEXT,
    st.binary(max_size=200).map(_line),
    st.text(max_size=200).map(lambda text: _line(text.encode("utf-8", "surrogatepass"))),
    st.integers(min_value=1, max_value=8000).map(lambda size: b"v" * size),
)
RETRY_AFTER = st.one_of(
    st.integers(min_value=-5, max_value=10**15).map(lambda n: str(n).encode()),
    st.sampled_from(
        [
            "²",
            "٣",
            "1e3",
            "0.5",
            " 1 ",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 99999 07:28:00 GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "tomorrow",
            "",
        ]
    ).map(lambda text: text.encode()),
    st.binary(max_size=40).map(_line),
)
STATUS_CODE = st.one_of(
    st.sampled_from([200, 201, 204, 301, 302, 400, 404, 410, 429, 500, 502, 503]),
    st.integers(min_value=100, max_value=999),
)
VALID_STATUS_LINE = st.builds(
    lambda code, reason: b"HTTP/1.1 %d " % code + reason, STATUS_CODE, OBS_TEXT
)
STATUS_LINE = st.one_of(
    VALID_STATUS_LINE,
    VALID_STATUS_LINE,
    VALID_STATUS_LINE,
    st.builds(
        lambda code, reason: b"HTTP/1.1 %d " % code + reason,
        STATUS_CODE,
        st.binary(max_size=30).map(_line),
    ),
    st.sampled_from([b"HTTP/1.1 abc OK", b"HTTP/9.9 200 OK", b"garbage", b"", b"HTTP/1.1 200"]),
    st.binary(max_size=60).map(_line),
)
BODY = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers(min_value=1, max_value=64_000).map(lambda size: b"\x00" * size),
    st.just(b'{"ok": true}'),
)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    """One answer a hostile receiver may give."""
    status = draw(STATUS_LINE)
    headers = draw(st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=12))
    if draw(st.booleans()):
        headers.append((b"Retry-After", draw(RETRY_AFTER)))
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # many large headers
        size = draw(st.integers(min_value=100, max_value=8000))
        headers += [(b"x-big-%d" % n, b"b" * size) for n in range(draw(st.integers(20, 120)))]
    head = b"".join(
        [status + b"\r\n", *(name + b": " + value + b"\r\n" for name, value in headers)]
    )
    behaviour = draw(st.sampled_from(["full"] * 12 + ["cut", "cut", "silent", "slow"]))
    return Answer(
        head=head,
        body=draw(BODY),
        framing=draw(st.sampled_from(["length", "length", "lying", "chunked", "close"])),
        cut_at=draw(st.floats(0.0, 0.99)) if behaviour == "cut" else None,
        delay_s=1.0 if behaviour == "slow" else 0.0,
        silent=behaviour == "silent",
    )


def _framed(answer: Answer) -> bytes:
    head, body = answer.head, answer.body
    if answer.framing == "length":
        head += b"Content-Length: %d\r\n" % len(body)
    elif answer.framing == "lying":
        head += b"Content-Length: %d\r\n" % (len(body) * 2 + 1)
    elif answer.framing == "chunked":
        head += b"Transfer-Encoding: chunked\r\n"
        body = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    return head + b"\r\n" + body


@dataclass
class HostileReceiver:
    """Answers the requests on each path with the answers set for it, in turn (the last one
    repeats); counts the requests read per path."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                path = await self._read_request(reader)
                if path is None:
                    return
                script = self.answers.get(path) or [Answer(b"HTTP/1.1 404 x\r\n", b"", "length")]
                answer = script[min(self.requests[path], len(script) - 1)]
                self.requests[path] += 1
                if answer.delay_s:
                    await asyncio.sleep(answer.delay_s)
                if answer.silent:
                    return
                data = _framed(answer)
                if answer.cut_at is not None:
                    writer.write(data[: int(len(data) * answer.cut_at)])
                    await writer.drain()
                    return
                writer.write(data)
                await writer.drain()
                if answer.framing in ("close", "lying"):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> str | None:
        """The path of the next request on the connection, its body read; None at its end."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, TimeoutError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        await reader.readexactly(length)
        return lines[0].split(" ")[1]
