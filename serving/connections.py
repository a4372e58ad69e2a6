"""Connection guards below the ASGI app: slow header lines time out, open connections per client are capped.

The ASGI app only sees a request once its headers are complete, so neither limit can live there: a
client that sends one header byte a second, or opens thousands of idle connections, never reaches it.
:class:`GuardedHttpProtocol` is uvicorn's httptools protocol plus two guards:

- a header clock started when a connection opens and when the next request on it begins, stopped when
  the headers are complete; one sweeper per process (a timer re-armed every second, not one timer per
  request: per-request timer handles slowed c=64 in ``benchmarks/serving.py``) answers ``408`` and
  closes any connection whose headers took longer than ``header_timeout`` seconds;
- a per-client-address count of open connections: above ``max_per_client`` a new connection gets
  ``429`` and is closed at once.

``service.py`` (the BentoML module) installs it as uvicorn's ``auto`` protocol, because BentoML builds
the ``uvicorn.Config`` itself and offers no option for the protocol class.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import HeaderTimeoutError, TooManyConnectionsError, raw_http_answer

__all__ = ["GuardedHttpProtocol"]


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a cap on connections per client address."""

    header_timeout: ClassVar[float] = 10.0
    max_per_client: ClassVar[int] = 256
    sweep_every: ClassVar[float] = 1.0
    _open: ClassVar[dict[str, int]] = {}
    _sweeper: ClassVar[asyncio.TimerHandle | None] = None

    @classmethod
    def configure(cls, header_timeout: float, max_per_client: int) -> None:
        cls.header_timeout = header_timeout
        cls.max_per_client = max_per_client
        cls.sweep_every = min(1.0, header_timeout / 2)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_since: float | None = self.loop.time()
        self._address = self.client[0] if self.client else "-"
        count = self._open.get(self._address, 0) + 1
        self._open[self._address] = count
        if GuardedHttpProtocol._sweeper is None:
            GuardedHttpProtocol._sweeper = self.loop.call_later(self.sweep_every, self._sweep)
        if count > self.max_per_client:
            self._header_since = None
            transport.write(
                raw_http_answer(
                    TooManyConnectionsError(
                        f"this address already holds {count - 1} open connections; the limit is "
                        f"{self.max_per_client}",
                        "reuse keep-alive connections, or close idle ones",
                    )
                )
            )
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_since = None
        left = self._open.get(self._address, 1) - 1
        if left > 0:
            self._open[self._address] = left
        else:
            self._open.pop(self._address, None)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_since is None:
            self._header_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._header_since = None
        super().on_headers_complete()

    def _sweep(self) -> None:
        """Every ``sweep_every`` seconds: cut the connections whose headers are overdue."""
        now = self.loop.time()
        for conn in list(self.connections):
            since = getattr(conn, "_header_since", None)
            if since is not None and now - since > self.header_timeout:
                conn._headers_too_slow()
        GuardedHttpProtocol._sweeper = self.loop.call_later(self.sweep_every, self._sweep)

    def _headers_too_slow(self) -> None:
        self._header_since = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered on this connection (pipelining): not idle
        self.transport.write(
            raw_http_answer(
                HeaderTimeoutError(
                    f"the request headers did not arrive within {self.header_timeout:g} s",
                    "send the whole request head at once",
                )
            )
        )
        self.transport.close()
