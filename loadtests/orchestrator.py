"""The one orchestrator of ``lockgate loadtest``: plan -> readiness -> preflight -> load -> verdict.

Imports the Locust runner, so it runs only after gevent's monkey-patching (see ``loadtests.cli``).
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from loadtests.capacity import CapacityReport, find_capacity
from loadtests.gateway import preflight, wait_ready
from loadtests.measurements import ALL_ENDPOINTS, Measurements
from loadtests.monitor import find_listening_pid
from loadtests.plan import REQUEST_NAMES, TrafficPlan, build_pool
from loadtests.registry_source import plan_from_registry
from loadtests.reports import write_json_atomic, write_text_atomic
from loadtests.runner import LoadSession, SessionOptions
from loadtests.settings import LoadtestSettings
from loadtests.slo import Verdict, evaluate, load_slo
from loadtests.soak import MemoryReport, memory_report
from loadtests.sources import load_traffic_file, plan_from_file

__all__ = ["LoadtestResult", "build_plan", "run_loadtest"]


class LoadtestResult(BaseModel):
    """What ``--json`` prints and ``--json-out FILE`` writes: the run's figures and its verdict (run and
    soak), the memory report (soak) or the capacity search (step)."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["run", "step", "soak"]
    passed: bool
    exit_code: int
    measurements: Measurements | None = None
    verdict: Verdict | None = None
    memory: MemoryReport | None = None
    capacity: CapacityReport | None = None
    reports: str


def build_plan(settings: LoadtestSettings) -> TrafficPlan:
    traffic = load_traffic_file(settings.traffic) if settings.traffic else None
    if settings.registry_url or settings.use_registry or settings.rotate_keys:
        return plan_from_registry(
            settings.registry_url,
            traffic,
            rotate_keys=settings.rotate_keys,
            refused_share=settings.refused_share,
            seed=settings.seed,
            max_batch=settings.max_batch,
        )
    assert traffic is not None  # the settings validator guarantees a source
    return plan_from_file(traffic, settings.refused_share, settings.seed, settings.max_batch)


def _server_pid(settings: LoadtestSettings) -> int | None:
    if settings.server_pid:
        return settings.server_pid
    url = urllib.parse.urlsplit(settings.host)
    if url.hostname in {"127.0.0.1", "localhost", "::1"}:
        return find_listening_pid(url.port or (443 if url.scheme == "https" else 80))
    return None


def _summary(m: Measurements) -> str:
    total = m.endpoints[ALL_ENDPOINTS]
    valid = m.endpoint(REQUEST_NAMES["valid"])
    refused = total.requests - (valid.requests if valid else 0)
    line = (
        f"{total.requests} requests in {m.duration_s:.1f} s with {m.users} users ({total.rps:.1f} req/s): "
        f"{valid.requests if valid else 0} predictions, {refused} must-be-refused; "
        f"{total.failures} unexpected answers"
    )
    if m.cpu is not None:
        gw = "unknown" if m.cpu.gateway_percent is None else f"{m.cpu.gateway_percent:.0f}%"
        line += (
            f"\nCPU (% of one core, {m.cpu.cores} cores): gateway {gw}, Locust {m.cpu.locust_percent:.0f}%, "
            f"whole machine {m.cpu.machine_percent or 0:.0f}%"
        )
    return line


def _write_run(folder: Path, m: Measurements, verdict: Verdict) -> None:
    write_json_atomic(folder / "measurements.json", m)
    write_json_atomic(folder / "verdict.json", verdict)
    write_text_atomic(folder / "verdict.txt", verdict.table() + "\n")


def run_loadtest(settings: LoadtestSettings) -> int:
    """Run the mode the settings ask for; print the tables; return the exit code."""
    slo = load_slo(settings.slo)
    plan = build_plan(settings)
    pool = build_pool(plan)
    wait_ready(settings.host, settings.ready_timeout)
    sent_first = preflight(plan, pool, settings.host)
    options = SessionOptions(
        host=settings.host,
        think_time=settings.think_time,
        report_dir=settings.report_dir,
        ui=settings.ui,
        ui_host=settings.ui_host,
        ui_port=settings.ui_port,
        server_pid=_server_pid(settings),
        memory_interval=settings.memory_interval if settings.mode == "soak" else 0.0,
    )
    folder = settings.report_dir
    with LoadSession(plan, pool, options) as session:
        if settings.mode == "step":
            start = settings.start_users or settings.step_users
            report = find_capacity(
                session,
                slo,
                start,
                settings.step_users,
                settings.step_duration,
                settings.max_users,
                settings.spawn_rate,
                on_step=lambda s: print(
                    f"step {s.users} users: {s.rps:.1f} req/s, p95 {s.p95_ms:.0f} ms, "
                    f"{'held' if s.held else 'broke ' + ', '.join(s.broken)}",
                    file=sys.stderr,
                    flush=True,
                ),
            )
            session.stop()
        elif settings.mode == "soak":
            # steady state only: ramp and warm up (caches, allocator pools) before measuring memory
            session.ramp(settings.users, settings.spawn_rate)
            session.hold(settings.soak_warmup)
            session.reset()
            session.hold(settings.duration)
            session.stop()
            measured = session.measure().model_copy(update={"preflight": sent_first})
        else:
            session.reset()
            session.start(settings.users, settings.spawn_rate)
            session.hold(settings.duration)
            session.stop()
            measured = session.measure().model_copy(update={"preflight": sent_first})
    if settings.mode == "step":
        write_json_atomic(folder / "capacity.json", report)
        write_text_atomic(folder / "capacity.txt", report.table() + "\n")
        code = 0 if report.capacity is not None else 1
        result = LoadtestResult(mode="step", passed=code == 0, exit_code=code, capacity=report,
                                reports=str(folder))
        return _finish(settings, result, report.table())
    verdict = evaluate(slo, measured)
    _write_run(folder, measured, verdict)
    text = [_summary(measured)]
    mem = None
    if settings.mode == "soak":
        mem = memory_report(measured)
        write_json_atomic(folder / "memory.json", mem)
        text.append(mem.table())
    text += ["", verdict.table(),
             f"\nreports: {folder}/ (report.html, locust_*.csv, measurements.json, verdict.txt)"]
    result = LoadtestResult(mode=settings.mode, passed=verdict.passed, exit_code=verdict.exit_code,
                            measurements=measured, verdict=verdict, memory=mem, reports=str(folder))
    return _finish(settings, result, "\n".join(text))


def _finish(settings: LoadtestSettings, result: LoadtestResult, text: str) -> int:
    """Print the tables (or, with ``--json``, the result as JSON); write ``--json-out``; the exit code."""
    if settings.json_out is not None:
        write_json_atomic(settings.json_out, result)
    print(result.model_dump_json(indent=2) if settings.print_json else text)
    return result.exit_code
