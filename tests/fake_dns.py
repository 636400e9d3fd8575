"""A resolver that answers names from a table, as a hostile DNS server would: tests of the
SSRF guard use it so that no lookup leaves the machine and no traffic reaches the answers."""

import socket

from aiohttp.abc import AbstractResolver, ResolveResult


class FakeResolver(AbstractResolver):
    """Answers names from a table, the way a hostile DNS server would."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": ip, "port": port, "family": family, "proto": 0, "flags": 0}
            for ip in self.answers[host]
        ]

    async def close(self) -> None:
        pass
