"""Watching the server process from outside: CPU share and memory (RSS) of its process tree.

The gateway may run as a parent with worker children (BentoML), so every figure sums the tree.
When the server is not a local process, memory can instead be read from the gateway's own
``process_resident_memory_bytes`` in ``/metrics`` (prometheus_client's process collector).
"""

from __future__ import annotations

import os
import time
import urllib.request

import psutil
from prometheus_client.parser import text_string_to_metric_families

from loadtests.errors import GatewayError
from loadtests.measurements import CpuShare, MemorySample

__all__ = ["ProcessMonitor", "find_listening_pid", "rss_from_metrics"]


def find_listening_pid(port: int) -> int | None:
    """The top-most local process listening on TCP ``port`` (None when none, or not visible to us)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    pids = {
        c.pid for c in conns if c.pid and c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    }
    for pid in sorted(pids):
        try:
            parent = psutil.Process(pid).ppid()
        except psutil.Error:
            continue
        if parent not in pids:
            return pid
    return min(pids) if pids else None


def rss_from_metrics(url: str, timeout: float = 5.0) -> float | None:
    """``process_resident_memory_bytes`` (summed over samples) from a Prometheus text page, in MB."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - a URL we were given
            text = resp.read().decode("utf-8", "replace")
    except OSError as e:
        raise GatewayError(f"cannot read {url}: {e}", "check --host and that the gateway is up") from None
    total = None
    for family in text_string_to_metric_families(text):
        if family.name == "process_resident_memory_bytes":
            total = sum(s.value for s in family.samples)
    return None if total is None else total / 1e6


class ProcessMonitor:
    """CPU seconds and RSS of a process tree (``pid`` and its descendants) and of this process."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._me = psutil.Process(os.getpid())
        self._start = time.monotonic()
        self._tree_cpu: dict[int, float] = {}
        self._my_cpu = 0.0
        self.reset()

    def _tree(self) -> list[psutil.Process]:
        if self.pid is None:
            return []
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    @staticmethod
    def _cpu(proc: psutil.Process) -> float | None:
        try:
            t = proc.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return None

    def _tree_times(self) -> dict[int, float]:
        out = {}
        for p in self._tree():
            t = self._cpu(p)
            if t is not None:
                out[p.pid] = t
        return out

    def reset(self) -> None:
        """Start a new measuring window."""
        self._start = time.monotonic()
        self._tree_cpu = self._tree_times()
        self._my_cpu = self._cpu(self._me) or 0.0
        self._machine = self._machine_busy()

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    @property
    def alive(self) -> bool:
        return bool(self._tree())

    def rss_mb(self) -> float | None:
        """Resident memory of the server tree in MB (None when the process is unknown or gone)."""
        total, seen = 0, False
        for p in self._tree():
            try:
                total += p.memory_info().rss
                seen = True
            except psutil.Error:
                continue
        return total / 1e6 if seen else None

    def sample(self) -> MemorySample | None:
        rss = self.rss_mb()
        return None if rss is None else MemorySample(seconds=time.monotonic() - self._start, rss_mb=rss)

    def cpu_share(self) -> CpuShare:
        """Average CPU of the server tree and of this process since :meth:`reset`, in % of one core."""
        wall = max(time.monotonic() - self._start, 1e-6)
        gateway = None
        if self.pid is not None:
            now = self._tree_times()
            used = sum(t - self._tree_cpu.get(pid, 0.0) for pid, t in now.items())
            gateway = 100.0 * used / wall if now else None
        mine = 100.0 * ((self._cpu(self._me) or 0.0) - self._my_cpu) / wall
        machine = 100.0 * (self._machine_busy() - self._machine) / wall
        return CpuShare(
            gateway_percent=gateway,
            locust_percent=mine,
            machine_percent=machine,
            cores=psutil.cpu_count() or 1,
        )
