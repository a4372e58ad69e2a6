"""Runs Locust in this process through its library API (Environment, LocalRunner, stats).

:class:`LoadSession` owns one Locust environment for the whole run: ramp to a number of users, hold,
measure; the plain run, the step-load search and the soak all drive it. Reports (CSV + HTML) land in
``report_dir`` when the session closes.

Importing this module imports Locust, which monkey-patches the standard library with gevent: import
it only in a process that runs load (the ``lockgate loadtest`` CLI), never from library code.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import gevent
from locust.env import Environment
from locust.html import get_html_report
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter, stats_history

from loadtests.errors import LoadtestError
from loadtests.measurements import Measurements, MemorySample, measure
from loadtests.monitor import ProcessMonitor, rss_from_metrics
from loadtests.plan import PayloadPool, TrafficPlan
from loadtests.reports import write_text_atomic
from loadtests.users import Ledger, build_user_classes

__all__ = ["LoadSession", "SessionOptions"]

log = logging.getLogger(__name__)
CSV_PREFIX = "locust"


@dataclass(frozen=True)
class SessionOptions:
    """How to drive the gateway (not what to send: that is the plan)."""

    host: str
    think_time: float = 0.0
    report_dir: Path | None = None
    ui: bool = False
    ui_host: str = "127.0.0.1"
    ui_port: int = 8089
    server_pid: int | None = None
    memory_interval: float = 0.0
    stop_timeout: float = 10.0


class _Rows:
    """Collects rows from Locust's CSV writers into text (so the final files are written atomically)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def writerow(self, columns) -> None:  # noqa: ANN001 - Locust's CSVWriter protocol
        buf: list[str] = []
        csv.writer(_Sink(buf)).writerow(list(columns))
        self.lines.extend(buf)

    def text(self) -> str:
        return "".join(self.lines)


class _Sink:
    def __init__(self, buf: list[str]) -> None:
        self.buf = buf

    def write(self, s: str) -> None:
        self.buf.append(s)


class LoadSession:
    """One Locust environment against one gateway. Use as a context manager."""

    def __init__(self, plan: TrafficPlan, pool: PayloadPool, options: SessionOptions) -> None:
        self.plan = plan
        self.options = options
        self.ledger = Ledger()
        self.monitor = ProcessMonitor(options.server_pid)
        self.memory: list[MemorySample] = []
        self._greenlets: list[gevent.Greenlet] = []
        self._csv_writer: StatsCSVFileWriter | None = None
        self._window_start = time.monotonic()
        classes = build_user_classes(plan, pool, self.ledger, options.think_time)
        self.env = Environment(user_classes=classes, host=options.host, stop_timeout=options.stop_timeout)
        self.runner = self.env.create_local_runner()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LoadSession:
        opts = self.options
        if opts.report_dir is not None:
            opts.report_dir.mkdir(parents=True, exist_ok=True)
            self._csv_writer = StatsCSVFileWriter(
                self.env, PERCENTILES_TO_REPORT, str(opts.report_dir / CSV_PREFIX), full_history=True
            )
            self._greenlets.append(gevent.spawn(self._csv_writer.stats_writer))
        self._greenlets.append(gevent.spawn(stats_history, self.runner))
        if opts.ui:
            try:
                self.env.create_web_ui(host=opts.ui_host, port=opts.ui_port)
            except OSError as e:
                raise LoadtestError(
                    f"cannot start the Locust web UI on {opts.ui_host}:{opts.ui_port}: {e}",
                    "pick another --ui-port",
                ) from None
            log.warning("Locust web UI on http://%s:%d", opts.ui_host, opts.ui_port)
        if opts.memory_interval > 0:
            self._greenlets.append(gevent.spawn(self._sample_memory))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.runner.quit()
        gevent.killall(self._greenlets, block=True, timeout=5)
        if self.options.report_dir is not None:
            self._write_reports(self.options.report_dir)
        if self.env.web_ui is not None:
            self.env.web_ui.stop()

    # ------------------------------------------------------------------ driving
    def start(self, users: int, spawn_rate: float) -> None:
        """Ramp to ``users`` at ``spawn_rate`` users/s (returns at once; the ramp runs in the background)."""
        self.runner.start(users, spawn_rate=spawn_rate)

    def ramp(self, users: int, spawn_rate: float, timeout: float | None = None) -> None:
        """Ramp to ``users`` and wait until they are all running."""
        self.start(users, spawn_rate)
        limit = timeout if timeout is not None else 10.0 + users / max(spawn_rate, 0.1) * 2
        deadline = time.monotonic() + limit
        while self.runner.user_count != users:
            if time.monotonic() > deadline:
                raise LoadtestError(
                    f"Locust reached {self.runner.user_count} of {users} users within {limit:.0f} s",
                    "raise --spawn-rate or lower --users",
                )
            gevent.sleep(0.1)

    def reset(self) -> None:
        """Forget what was measured so far: a new measuring window starts now."""
        self.runner.stats.reset_all()
        self.ledger.clear()
        self.monitor.reset()
        self.memory.clear()
        self._window_start = time.monotonic()

    def hold(self, seconds: float) -> None:
        gevent.sleep(seconds)

    def stop(self) -> None:
        """Stop the users (letting in-flight requests finish) so the counts are final."""
        self.runner.stop()

    def measure(self) -> Measurements:
        duration = max(time.monotonic() - self._window_start, 1e-3)
        cpu = self.monitor.cpu_share()
        return measure(
            self.runner.stats,
            duration_s=duration,
            users=self.runner.user_count or sum(self.runner.final_user_classes_count.values()),
            outcomes=self.ledger.outcomes(),
            memory=list(self.memory),
            cpu=cpu,
        )

    # ------------------------------------------------------------------ memory
    def _sample_memory(self) -> None:
        metrics_url = f"{self.options.host}/metrics"
        while True:
            sample = self.monitor.sample()
            if sample is None and self.options.server_pid is None:
                try:
                    rss = rss_from_metrics(metrics_url)
                except LoadtestError:
                    rss = None
                if rss is not None:
                    sample = MemorySample(seconds=time.monotonic() - self._window_start, rss_mb=rss)
            if sample is not None:
                self.memory.append(sample)
            gevent.sleep(self.options.memory_interval)

    # ------------------------------------------------------------------ reports
    def _write_reports(self, folder: Path) -> None:
        if self._csv_writer is not None:
            self._csv_writer.close_files()  # the history file stays as streamed; the rest is rewritten whole
        final = StatsCSV(self.env, PERCENTILES_TO_REPORT)
        for suffix, write in (
            ("stats", final.requests_csv),
            ("failures", final.failures_csv),
            ("exceptions", final.exceptions_csv),
        ):
            rows = _Rows()
            write(rows)
            write_text_atomic(folder / f"{CSV_PREFIX}_{suffix}.csv", rows.text())
        write_text_atomic(folder / "report.html", get_html_report(self.env, show_download_link=False))
