"""A real Prometheus server scraping the gateway, and the checks that its metrics agree with Locust.

:class:`PrometheusServer` starts the ``prometheus`` binary (Debian's package) with a generated config
that scrapes only ``127.0.0.1:<port>/metrics``, on a free localhost port with a temporary storage
directory, and stops it on exit. :func:`outcome_counts` reads request counters with PromQL;
:func:`compare_counts` and :func:`latency_agrees` judge them against what Locust sent.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from loadtests.errors import PrometheusError
from loadtests.measurements import OutcomeCount

__all__ = [
    "LATENCY_BUCKETS",
    "OUTCOME_OF_STATUS",
    "PrometheusServer",
    "check_metrics_text",
    "collapse_unattributed",
    "compare_counts",
    "expected_counts",
    "latency_agrees",
    "outcome_counts",
    "settled_outcome_counts",
]

#: the gateway's outcome label for each HTTP status (serving/metrics.py OUTCOMES)
OUTCOME_OF_STATUS = {
    200: "ok",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "too_large",
    415: "bad_media_type",
    422: "invalid_input",
    503: "not_ready",
}
#: the gateway's latency histogram buckets, in seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNATTRIBUTED = "*"
#: the outcomes only malformed bodies get (valid traffic answered so is already a Locust failure)
MALFORMED_OUTCOMES = frozenset({"invalid_input", "bad_media_type", "too_large", "error"})
#: outcomes the gateway may count without naming the consumer: malformed bodies (an unparseable body
#: names no model, and access is per model) and refusals of a consumer not declared for the model
UNATTRIBUTED_OUTCOMES = MALFORMED_OUTCOMES | {"forbidden"}
INSTALL_HINT = "install it with 'apt-get install -y prometheus' (Debian) or put the binary on PATH"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """``with PrometheusServer(gateway_port) as prom: prom.query("up")``."""

    def __init__(self, target_port: int, scrape_interval: float = 1.0, binary: str = "prometheus") -> None:
        self.target = f"127.0.0.1:{target_port}"
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        exe = shutil.which(self.binary)
        if exe is None:
            raise PrometheusError(f"the Prometheus binary {self.binary!r} is not on PATH", INSTALL_HINT)
        self._dir = Path(tempfile.mkdtemp(prefix="lockgate-prom-"))
        interval = f"{int(self.scrape_interval * 1000)}ms"
        config = {  # YAML is a superset of JSON
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {
                    "job_name": "lockgate",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": [self.target]}],
                }
            ],
        }
        (self._dir / "prometheus.yml").write_text(json.dumps(config, indent=2), encoding="utf-8")
        self.port = _free_port()
        log = open(self._dir / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
        self._proc = subprocess.Popen(
            [
                exe,
                f"--config.file={self._dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        try:
            self._wait_ready(timeout=30.0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _log_tail(self) -> str:
        try:
            return (self._dir / "prometheus.log").read_text(errors="replace")[-800:]  # type: ignore[operator]
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self._proc.returncode}: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready within {timeout:.0f} s: {self._log_tail()}")

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; returns Prometheus' ``result`` list (``metric`` labels + ``value``)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.4f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                payload = json.loads(resp.read())
        except (OSError, ValueError) as e:
            raise PrometheusError(f"PromQL {promql!r} failed: {e}") from None
        if payload.get("status") != "success":
            raise PrometheusError(f"PromQL {promql!r} failed: {payload.get('error')}")
        return payload["data"]["result"]

    def wait_for_scrape(self, after: float, timeout: float = 15.0) -> float:
        """Wait until the gateway was scraped (successfully) after ``after`` (epoch s); return a time at
        which that scrape's samples answer instant queries."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The sample's own time needs a plain selector: timestamp() of an expression such as
            # 'up == 1' answers the evaluation time instead. The value (1 = scrape succeeded) is read
            # from the same sample through the range selector.
            result = self.query('up{job="lockgate"}[5s]')
            samples = result[0]["values"] if result else []
            if samples and float(samples[-1][0]) > after and samples[-1][1] == "1":
                # half a millisecond later: Prometheus may truncate a float time to the millisecond
                # below, and would then answer with the scrape before this one
                return float(samples[-1][0]) + 0.0005
            time.sleep(self.scrape_interval / 4)
        raise PrometheusError(
            f"no successful scrape of {self.target} within {timeout:.0f} s",
            "check that the gateway serves /metrics",
        )


def outcome_counts(prom: PrometheusServer, at: float) -> dict[tuple[str, str], float]:
    """``sum by (consumer, outcome) (lockgate_requests_total)`` at time ``at``."""
    result = prom.query("sum by (consumer, outcome) (lockgate_requests_total)", at=at)
    return {
        (r["metric"].get("consumer", ""), r["metric"].get("outcome", "")): float(r["value"][1])
        for r in result
    }


def expected_counts(outcomes: list[OutcomeCount]) -> dict[tuple[str, str], int]:
    """What Locust sent, as (consumer, gateway outcome) -> requests.

    Outcomes in ``UNATTRIBUTED_OUTCOMES`` are counted under consumer ``*`` (the gateway may count them
    under ``-``); apply :func:`collapse_unattributed` to the Prometheus side too.
    """
    out: dict[tuple[str, str], int] = {}
    for o in outcomes:
        outcome = OUTCOME_OF_STATUS.get(o.status, "error")
        consumer = UNATTRIBUTED if outcome in UNATTRIBUTED_OUTCOMES else o.consumer
        key = (consumer, outcome)
        out[key] = out.get(key, 0) + o.count
    return out


def collapse_unattributed(counts: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """Fold the consumers of ``UNATTRIBUTED_OUTCOMES`` into consumer ``*``."""
    out: dict[tuple[str, str], float] = {}
    for (consumer, outcome), n in counts.items():
        key = (UNATTRIBUTED if outcome in UNATTRIBUTED_OUTCOMES else consumer, outcome)
        out[key] = out.get(key, 0.0) + n
    return out


def compare_counts(
    sent: dict[tuple[str, str], int],
    before: dict[tuple[str, str], float],
    after: dict[tuple[str, str], float],
) -> list[str]:
    """Every (consumer, outcome) whose counter increase differs from what Locust sent; [] when all agree."""
    problems = []
    for key in sorted(set(sent) | set(after)):
        delta = after.get(key, 0.0) - before.get(key, 0.0)
        if round(delta) != sent.get(key, 0):
            problems.append(
                f"consumer={key[0]} outcome={key[1]}: Prometheus +{delta:g}, Locust {sent.get(key, 0)}"
            )
    return problems


def _bucket_bounds(seconds: float) -> tuple[float, float]:
    """The (lower, upper) bounds of the latency bucket holding ``seconds``."""
    edges = (0.0, *LATENCY_BUCKETS, float("inf"))
    i = next(i for i in range(1, len(edges)) if seconds <= edges[i])
    return edges[i - 1], edges[i]


#: what the client may add to the gateway's own timing: HTTP parsing, the server's event loop, the
#: network stack and the load generator's scheduling (all outside the gateway's timer)
CLIENT_OVERHEAD_S = 0.05


def latency_agrees(prom_p99_s: float, locust_p99_ms: float) -> bool:
    """The gateway's p99 (from its histogram) and Locust's p99 tell the same story.

    Locust times more than the gateway (the whole round trip), so its p99 must be at least the lower
    edge of the histogram bucket holding the gateway's p99, and at most that bucket's upper edge plus
    the client overhead (``CLIENT_OVERHEAD_S`` or the bucket edge itself, whichever is larger).
    """
    lower, upper = _bucket_bounds(prom_p99_s)
    locust_s = locust_p99_ms / 1000.0
    return lower <= locust_s <= upper + max(CLIENT_OVERHEAD_S, upper)


def settled_outcome_counts(
    prom: PrometheusServer, after: float, timeout: float = 20.0
) -> tuple[float, dict[tuple[str, str], float]]:
    """Request counts once they stopped moving: two successive scrapes after ``after`` that agree.

    Call it after the load ended; returns (evaluation time, counts).
    """
    deadline = time.monotonic() + timeout
    at = prom.wait_for_scrape(after=after)
    counts = outcome_counts(prom, at)
    while time.monotonic() < deadline:
        nxt = prom.wait_for_scrape(after=at)
        again = outcome_counts(prom, nxt)
        if again == counts:
            return nxt, again
        at, counts = nxt, again
    raise PrometheusError(f"request counters still moving {timeout:.0f} s after the load ended")


def check_metrics_text(text: str, binary: str = "promtool") -> list[str]:
    """Run ``promtool check metrics`` on a /metrics page; return its complaints ([] when clean)."""
    exe = shutil.which(binary)
    if exe is None:
        raise PrometheusError(f"{binary!r} is not on PATH", INSTALL_HINT)
    proc = subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    lines = (proc.stdout + proc.stderr).decode(errors="replace").splitlines()
    return [ln for ln in lines if ln.strip()] if proc.returncode != 0 else []
