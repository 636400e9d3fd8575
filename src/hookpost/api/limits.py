"""Request body size cap, enforced before the body is parsed: by ``Content-Length`` at once,
and by counting the bytes of a chunked body as they arrive."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookpost.api.errors import Problem, problem_response


class BodySizeLimit:
    """ASGI middleware answering 413 ``request_too_large`` to bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            problem = self._check_declared(declared)
            if problem is not None:
                await problem_response(problem)(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes"

    def _check_declared(self, declared: bytes) -> Problem | None:
        if not declared.isdigit():
            return Problem("bad_request", "Content-Length is not a number")
        if int(declared) > self.max_bytes:
            return Problem("request_too_large", self._too_large())
        return None
