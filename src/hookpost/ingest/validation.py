"""Schema checks and payload validation in child processes, each request under a time bound.

Linear-time patterns (``schemas.py``) stop the regex attacks, but a schema can still cost
exponential time (a chain of ``$ref``s under ``anyOf``), and native code cannot be interrupted:
a process can be killed. So validation runs in up to ``processes`` children started on demand;
one that overruns the bound is killed, that request alone fails, and the next frame starts a
fresh child. The API's event loop only waits on a pipe.
"""

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from hookpost import jsonvalue
from hookpost.errors import HookpostError
from hookpost.ingest.schemas import FRAME, UnusableSchema

logger = logging.getLogger(__name__)


class ValidationError(HookpostError):
    """Validation could not give an answer."""

    code: ClassVar[str] = "validation_unavailable"


class ValidationTimeout(ValidationError):
    """A request ran over the time bound; its child was killed."""

    code: ClassVar[str] = "payload_validation_timeout"


class ValidationUnavailable(ValidationError):
    """No child could answer: it did not start, or it died."""

    code: ClassVar[str] = "validation_unavailable"


@dataclass(frozen=True, slots=True)
class PayloadError:
    """Where a payload breaks its schema (a JSON path), and why."""

    path: list[str | int]
    message: str


class _Child:
    """One validation process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> "_Child":
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hookpost.ingest.schemas",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def ask(self, request: bytes) -> bytes:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(FRAME.pack(len(request)) + request)
        await self.process.stdin.drain()
        (size,) = FRAME.unpack(await self.process.stdout.readexactly(FRAME.size))
        return await self.process.stdout.readexactly(size)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def stop(self) -> None:
        """Let it end on its own (its input closes), or kill it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=2)
        except TimeoutError:
            self.kill()
            await self.process.wait()


@dataclass(eq=False)
class _Job:
    """One caller's request and the future its answer goes to."""

    request: bytes  # ["check", schema] or ["validate", schema, payloads], as JSON
    answer: asyncio.Future[dict[str, Any]]
    alone: bool = False  # its shared frame ran over the bound: sent again by itself


class Validator:
    """``await schema_error(schema)`` and ``await payload_errors(schema, payloads)``, answered
    by up to ``processes`` child processes. Requests that arrive while every child is busy go
    to the next free one together, in one frame (as the group commit does for stores): a
    round trip to a child per request would halve single-event ingest. A frame that runs
    over ``timeout_s`` kills its child; its requests are then sent again one by one, so
    that only the slow one fails, with ``ValidationTimeout``."""

    def __init__(self, *, timeout_s: float, processes: int) -> None:
        self.timeout_s = timeout_s
        self._processes = processes
        self._waiting: list[_Job] = []
        self._running = 0  # loops sending frames, one child each
        self._idle: list[_Child] = []
        self._loops: set[asyncio.Task[None]] = set()
        self._reaping: set[asyncio.Task[int]] = set()  # killed children, until they exit
        self.timeouts = 0  # requests refused for running over the bound, for tests and figures
        self.frames = 0  # frames answered, for tests and figures

    async def schema_error(self, schema: dict[str, Any]) -> str | None:
        """Why ``schema`` cannot be used as an event type's schema, or None; raises
        ValidationUnavailable when no child can tell."""
        try:
            answer = await self._ask(["check", _schema_json(schema)])
        except ValidationTimeout:
            return "it took too long to compile"
        error: str | None = answer["schema_error"]
        return error

    async def payload_errors(
        self, schema_json: str, payloads: Sequence[Any]
    ) -> list[PayloadError | None]:
        """For each payload, where it breaks the schema (given as JSON text), or None."""
        answer = await self._ask(["validate", schema_json, list(payloads)])
        if answer["schema_error"] is not None:
            raise UnusableSchema(answer["schema_error"])
        return [None if error is None else PayloadError(*error) for error in answer["errors"]]

    async def _ask(self, request: list[Any]) -> dict[str, Any]:
        """The child's answer to ``request``; raises ``orjson.JSONEncodeError`` here, for this
        caller alone, for what JSON cannot hold."""
        job = _Job(jsonvalue.dumps(request), asyncio.get_running_loop().create_future())
        self._waiting.append(job)
        if self._running < self._processes:
            self._running += 1
            _keep(self._loops, asyncio.ensure_future(self._send_waiting()))
        return await job.answer

    async def _send_waiting(self) -> None:
        # The count drops in the step that finds nothing waiting, as in the group commit.
        try:
            while jobs := self._next_frame():
                await self._send(jobs)
        finally:
            self._running -= 1

    def _next_frame(self) -> list[_Job]:
        """The jobs of the next frame: a job that must go alone, or those that came first."""
        self._waiting = [job for job in self._waiting if not job.answer.done()]  # cancelled
        if not self._waiting:
            return []
        if self._waiting[0].alone:
            return [self._waiting.pop(0)]
        count = next((i for i, job in enumerate(self._waiting) if job.alone), len(self._waiting))
        jobs, self._waiting = self._waiting[:count], self._waiting[count:]
        return jobs

    async def _send(self, jobs: list[_Job]) -> None:
        data = b"[" + b",".join(job.request for job in jobs) + b"]"
        try:
            child = self._idle.pop() if self._idle else await _Child.start()
        except OSError as error:
            logger.error("validation could not start: %s", error)
            _fail(jobs, ValidationUnavailable("the validation process did not start"))
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await child.ask(data)
        except TimeoutError:
            self._reap(child)
            if len(jobs) > 1:
                for job in jobs:
                    job.alone = True
                self._waiting[:0] = jobs
                return
            self.timeouts += 1
            _fail(jobs, ValidationTimeout(f"validation took longer than {self.timeout_s:g} s"))
            return
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            self._reap(child)
            logger.error("the validation process died: %s", error)
            _fail(jobs, ValidationUnavailable("the validation process died"))
            return
        except BaseException:  # cancelled (the app closes): the child's state is unknown
            self._reap(child)
            _fail(jobs, ValidationUnavailable("validation stopped"))
            raise
        self._idle.append(child)
        self.frames += 1
        for job, result in zip(jobs, orjson.loads(answer), strict=True):
            if not job.answer.done():
                job.answer.set_result(result)

    def _reap(self, child: _Child) -> None:
        child.kill()
        _keep(self._reaping, asyncio.ensure_future(child.process.wait()))

    async def close(self) -> None:
        """Fail what waits, and stop every child."""
        _fail(self._waiting, ValidationUnavailable("validation stopped"))
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, *self._reaping, return_exceptions=True)
        children, self._idle = self._idle, []
        await asyncio.gather(*(child.stop() for child in children))


def _keep(tasks: set[asyncio.Task[Any]], task: asyncio.Task[Any]) -> None:
    """Hold a reference to ``task`` until it is done."""
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _fail(jobs: list[_Job], error: ValidationError) -> None:
    for job in jobs:
        if not job.answer.done():
            job.answer.set_exception(error)


def _schema_json(schema: dict[str, Any]) -> str:
    """A schema as the JSON text that validation takes (keys sorted: one text per schema)."""
    return jsonvalue.dumps(schema, sort_keys=True).decode()
