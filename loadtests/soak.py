"""Soak: a long, steady load while the server's memory (RSS of its process tree) is sampled.

The report gives the samples, the growth from first to last sample and a least-squares slope
(MB per hour), which is steadier than end-minus-start on a noisy series.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from loadtests.measurements import Measurements, MemorySample

__all__ = ["MemoryReport", "memory_report"]


class MemoryReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    samples: list[MemorySample]
    start_mb: float | None
    end_mb: float | None
    peak_mb: float | None
    growth_mb: float | None
    slope_mb_per_hour: float | None

    def table(self, rows: int = 12) -> str:
        if len(self.samples) < 2 or self.growth_mb is None or self.slope_mb_per_hour is None:
            return (
                "memory: fewer than 2 samples (run longer, give --server-pid, run the gateway on this "
                "machine, or expose process_resident_memory_bytes in /metrics)"
            )
        step = max(1, len(self.samples) // rows)
        picked = self.samples[::step]
        if picked[-1] is not self.samples[-1]:
            picked.append(self.samples[-1])
        lines = ["  seconds    RSS MB", "  -------  --------"]
        lines += [f"  {s.seconds:7.0f}  {s.rss_mb:8.1f}" for s in picked]
        lines.append(
            f"memory: {self.start_mb:.1f} MB -> {self.end_mb:.1f} MB (peak {self.peak_mb:.1f}); "
            f"growth {self.growth_mb:+.1f} MB, trend {self.slope_mb_per_hour:+.1f} MB/hour"
        )
        return "\n".join(lines)


def _slope(samples: list[MemorySample]) -> float | None:
    n = len(samples)
    if n < 2:
        return None
    mx = sum(s.seconds for s in samples) / n
    my = sum(s.rss_mb for s in samples) / n
    var = sum((s.seconds - mx) ** 2 for s in samples)
    if var == 0:
        return None
    return sum((s.seconds - mx) * (s.rss_mb - my) for s in samples) / var * 3600.0


def memory_report(measurements: Measurements) -> MemoryReport:
    s = measurements.memory
    return MemoryReport(
        samples=s,
        start_mb=s[0].rss_mb if s else None,
        end_mb=s[-1].rss_mb if s else None,
        peak_mb=max(x.rss_mb for x in s) if s else None,
        growth_mb=measurements.memory_growth_mb,
        slope_mb_per_hour=_slope(s),
    )
