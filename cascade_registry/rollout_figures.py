"""The figures of a rollout as a gateway measured them: read from its ``/metrics`` (the
``lockgate_rollout_*`` series of ``serving.metrics.RolloutMetrics``; with ``--workers N`` every worker's
counts summed), for ``lockgate registry rollout NAME --gateway URL``.

Per role (live, shadow, canary): rows predicted, mean and p95 model-call latency; for a shadow the share
of rows whose predicted class agreed with the live answer and |Δp| (per row the largest difference of a
class probability; mean and max); the shadow comparisons dropped. The p95 is the upper bound of the
histogram bucket holding it (the gateway keeps buckets, not samples).
"""

from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

from cascade_registry.entities import RolloutInfo
from cascade_registry.errors import InvalidInputError, RegistryError

__all__ = ["RoleFigures", "RolloutFigures", "fetch_figures", "read_figures"]

#: a /metrics page larger than this is not a lockgate gateway's
_MAX_BYTES = 32 << 20


class RoleFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str
    version: int
    rows: int
    latency_mean_ms: float | None
    latency_p95_ms: float | None


class RolloutFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    gateway: str
    roles: list[RoleFigures]
    compared_rows: int
    same_rows: int
    agreement: float | None
    mean_abs_dp: float | None
    max_abs_dp: float | None
    dropped: dict[str, int]


def _p95(buckets: dict[float, float], count: float) -> float | None:
    if count <= 0:
        return None
    for upper in sorted(buckets):
        if buckets[upper] >= 0.95 * count:
            return None if math.isinf(upper) else upper * 1000
    return None


def _samples(text: str, model: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("lockgate_rollout_"):
            continue
        for s in family.samples:
            if s.labels.get("model") == model:
                found.append((s.name, s.labels, s.value))
    return found


def read_figures(text: str, rollout: RolloutInfo, gateway: str = "") -> RolloutFigures:
    """The figures of ``rollout`` (its live and candidate versions) in a ``/metrics`` page."""
    versions = {str(rollout.live.version), str(rollout.candidate.version)}
    rows: dict[tuple[str, str], float] = {}
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    compared = {"same": 0.0, "differ": 0.0}
    dp_sum = 0.0
    dp_max: float | None = None
    dropped: dict[str, int] = {}
    for name, labels, value in _samples(text, rollout.model):
        version, key = labels.get("version", ""), (labels.get("role", ""), labels.get("version", ""))
        if name == "lockgate_rollout_shadow_dropped_total":
            dropped[labels["reason"]] = dropped.get(labels["reason"], 0) + int(value)
        if version not in versions:
            continue
        if name == "lockgate_rollout_rows_total":
            rows[key] = rows.get(key, 0.0) + value
        elif name == "lockgate_rollout_latency_seconds_sum":
            sums[key] = value
        elif name == "lockgate_rollout_latency_seconds_count":
            counts[key] = value
        elif name == "lockgate_rollout_latency_seconds_bucket":
            buckets.setdefault(key, {})[float(labels["le"])] = value
        elif name == "lockgate_rollout_compared_rows_total" and version == str(rollout.candidate.version):
            compared[labels["agreement"]] = compared.get(labels["agreement"], 0.0) + value
        elif name == "lockgate_rollout_abs_dp_total" and version == str(rollout.candidate.version):
            dp_sum = value
        elif name == "lockgate_rollout_max_abs_dp" and version == str(rollout.candidate.version):
            dp_max = value
    roles = [
        RoleFigures(
            role=role,
            version=int(version),
            rows=int(n),
            latency_mean_ms=sums.get((role, version), 0.0) / counts[(role, version)] * 1000
            if counts.get((role, version))
            else None,
            latency_p95_ms=_p95(buckets.get((role, version), {}), counts.get((role, version), 0.0)),
        )
        for (role, version), n in sorted(
            rows.items(), key=lambda kv: ("live", "shadow", "canary").index(kv[0][0])
        )
    ]
    total = int(compared["same"] + compared["differ"])
    dp_count = total if dp_max is not None else 0  # |dp| is summed over every compared row
    return RolloutFigures(
        model=rollout.model,
        gateway=gateway,
        roles=roles,
        compared_rows=total,
        same_rows=int(compared["same"]),
        agreement=compared["same"] / total if total else None,
        mean_abs_dp=dp_sum / dp_count if dp_count else None,
        max_abs_dp=dp_max if dp_count else None,
        dropped=dropped,
    )


def fetch_figures(gateway: str, rollout: RolloutInfo, timeout: float = 10.0) -> RolloutFigures:
    """GET ``gateway``/metrics and read the figures of ``rollout``; a clear error when it cannot."""
    if not gateway.startswith(("http://", "https://")):
        raise InvalidInputError(
            f"--gateway {gateway[:60]!r} is not an http(s) URL", "e.g. http://127.0.0.1:3000"
        )
    url = gateway.rstrip("/") + "/metrics"
    try:
        with httpx.stream("GET", url, timeout=timeout) as response:
            if response.status_code != 200:
                raise RegistryError(f"{url} answered {response.status_code}", "is it a lockgate gateway?")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_BYTES:
                    raise RegistryError(
                        f"{url} sent more than {_MAX_BYTES >> 20} MB", "is it a lockgate gateway?"
                    )
    except httpx.HTTPError as e:
        raise RegistryError(
            f"cannot read {url}: {type(e).__name__}", "is the gateway running there?"
        ) from None
    try:
        return read_figures(body.decode("utf-8"), rollout, gateway)
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        raise RegistryError(f"{url} is not a Prometheus page of a lockgate gateway ({e})") from None
