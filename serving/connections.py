"""Connection guards below the ASGI app: slow header lines time out, open connections per client are capped.

The ASGI app only sees a request once its headers are complete, so neither limit can live there: a
client that sends one header byte a second, or opens thousands of idle connections, never reaches it.
:class:`GuardedHttpProtocol` is uvicorn's httptools protocol plus two guards:

- a header timer armed when a connection opens and when the next request on it begins, disarmed when
  the headers are complete: a request whose headers take longer than ``header_timeout`` seconds gets
  ``408`` and the connection is closed;
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
    _open: ClassVar[dict[str, int]] = {}

    @classmethod
    def configure(cls, header_timeout: float, max_per_client: int) -> None:
        cls.header_timeout = header_timeout
        cls.max_per_client = max_per_client

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._address = self.client[0] if self.client else "-"
        count = self._open.get(self._address, 0) + 1
        self._open[self._address] = count
        if count > self.max_per_client:
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
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        left = self._open.get(self._address, 1) - 1
        if left > 0:
            self._open[self._address] = left
        else:
            self._open.pop(self._address, None)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
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
