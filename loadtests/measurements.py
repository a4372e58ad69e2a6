"""What one load run measured, as plain pydantic data (no Locust import here).

:func:`measure` reads a Locust ``RequestStats`` object by duck typing, so this module can be imported
(and its results evaluated) without gevent's monkey-patching, which ``import locust`` performs.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ALL_ENDPOINTS",
    "CpuShare",
    "EndpointStats",
    "Measurements",
    "MemorySample",
    "OutcomeCount",
    "measure",
]

#: the endpoint name that stands for every request of the run (Locust's "Aggregated" row)
ALL_ENDPOINTS = "all"
PERCENTILES: dict[str, float] = {"p50_ms": 0.50, "p90_ms": 0.90, "p95_ms": 0.95, "p99_ms": 0.99}


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EndpointStats(_Data):
    """Latency and counts of one request name (Locust's name) over the measured window."""

    name: str
    requests: int = Field(ge=0)
    failures: int = Field(ge=0, description="answers that were not what the request expected")
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    avg_ms: float
    rps: float = Field(description="requests per second over the measured window")

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


class OutcomeCount(_Data):
    """How many requests of one kind one consumer sent, by the HTTP status that came back."""

    consumer: str = Field(description="the consumer whose key was sent ('-' when no key was sent)")
    model: str
    kind: str = Field(description="the traffic kind: valid, no_key, undeclared or malformed")
    status: int = Field(description="HTTP status; 0 when no answer came (connection error)")
    expected: bool
    count: int = Field(ge=0)


class MemorySample(_Data):
    seconds: float = Field(description="seconds since the start of the measured window")
    rss_mb: float


class CpuShare(_Data):
    """Average CPU use over the measured window, in percent of ONE core (200 = both of 2 cores)."""

    gateway_percent: float | None
    locust_percent: float
    machine_percent: float | None = Field(
        None, description="every process of the machine together (others' work competes for the cores)"
    )
    cores: int


class Measurements(_Data):
    duration_s: float = Field(gt=0)
    users: int = Field(ge=0)
    endpoints: dict[str, EndpointStats]
    outcomes: list[OutcomeCount] = Field(default_factory=list)
    memory: list[MemorySample] = Field(default_factory=list)
    cpu: CpuShare | None = None
    preflight: list[OutcomeCount] = Field(
        default_factory=list, description="the readiness calls sent before the load (not in the stats)"
    )

    def endpoint(self, name: str) -> EndpointStats | None:
        return self.endpoints.get(name)

    @property
    def memory_growth_mb(self) -> float | None:
        """RSS at the end minus RSS at the start, in MB (None when memory was not sampled)."""
        if len(self.memory) < 2:
            return None
        return self.memory[-1].rss_mb - self.memory[0].rss_mb


class _Entry(Protocol):
    name: str
    num_requests: int
    num_failures: int
    max_response_time: float
    avg_response_time: float

    def get_response_time_percentile(self, percent: float) -> float: ...


def _endpoint(name: str, entry: _Entry, duration_s: float) -> EndpointStats:
    n = int(entry.num_requests)
    pct = {
        k: float(entry.get_response_time_percentile(p) or 0.0) if n else 0.0 for k, p in PERCENTILES.items()
    }
    return EndpointStats(
        name=name,
        requests=n,
        failures=int(entry.num_failures),
        max_ms=float(entry.max_response_time or 0.0),
        avg_ms=float(entry.avg_response_time or 0.0),
        rps=n / duration_s,
        **pct,
    )


def measure(
    stats: Any,
    duration_s: float,
    users: int,
    outcomes: list[OutcomeCount] | None = None,
    memory: list[MemorySample] | None = None,
    cpu: CpuShare | None = None,
) -> Measurements:
    """Turn a Locust ``RequestStats`` (``entries`` + ``total``) into :class:`Measurements`."""
    endpoints = {
        name: _endpoint(name, entry, duration_s) for (name, _method), entry in sorted(stats.entries.items())
    }
    endpoints[ALL_ENDPOINTS] = _endpoint(ALL_ENDPOINTS, stats.total, duration_s)
    return Measurements(
        duration_s=duration_s,
        users=users,
        endpoints=endpoints,
        outcomes=outcomes or [],
        memory=memory or [],
        cpu=cpu,
    )
