"""What every navctl command shares: the client, the namespace, the output and the clock."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from navarch._client import Client
from navarch._navctl.errors import NavctlError

__all__ = ["Context", "parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

DEFAULT_TIMEOUT = 30.0


def parse_duration(text: str, flag: str) -> float:
    """Seconds in ``text``: ``30``, ``30s``, ``1m30s``, ``500ms``, ``2h``. Raises NavctlError
    naming ``flag`` otherwise."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        total += float(match[1]) * _UNIT_SECONDS[match[2]]
        pos = match.end()
    if pos != len(value) or not value:
        raise NavctlError(f'invalid value "{text}" for {flag}: a duration such as 30, 30s, '
                          "1m or 500ms is expected")
    return total


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """Per-invocation state. ``namespace_explicit`` is whether ``-n`` was given (manifests
    in another namespace are then refused, as kubectl refuses them); ``watch_timeout`` is
    an explicit ``--request-timeout``, which also ends watches; ``token`` is ``--token``
    (None: the client finds one as it finds the server)."""

    server: str | None = None
    namespace: str = "default"
    namespace_explicit: bool = False
    timeout: float = DEFAULT_TIMEOUT
    watch_timeout: float | None = None
    token: str | None = None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], datetime] = _now
    _client: Client | None = None
    failed: bool = False
    exit_code: int = 0  # the exit status a command asks for (exec: the command's)

    def client(self) -> Client:
        """The API client, connected on first use."""
        if self._client is None:
            self._client = Client(self.server, timeout=self.timeout, token=self.token or "")
        return self._client

    @property
    def address(self) -> str:
        """The server address as given or resolved (for messages)."""
        return self._client.server if self._client is not None else (self.server or "")

    async def close(self) -> None:
        """Close the client, if one was opened."""
        if self._client is not None:
            await self._client.close()

    def now(self) -> datetime:
        """The current time (injected in tests)."""
        return self.clock()

    def print(self, *lines: str) -> None:
        """Write lines to standard output, flushed (watch output is read as it comes)."""
        for line in lines:
            self.out.write(line + "\n")
        self.out.flush()

    def warn(self, *lines: str) -> None:
        """Write lines to standard error."""
        for line in lines:
            self.err.write(line + "\n")
        self.err.flush()

    def fail(self, message: str) -> None:
        """Report an error that does not stop the command; the exit code becomes 1."""
        self.failed = True
        self.warn(message)
