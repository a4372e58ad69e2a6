"""``ServeSettings``: the one settings class of the gateway (environment prefix ``LOCKGATE_SERVE_``).

Built once by the entry point (``lockgate serve`` or the BentoML service) and passed down; library
code never reads the environment itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServeSettings", "cores"]


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ServeSettings(BaseSettings):
    """Every knob of the gateway. ``LOCKGATE_SERVE_PORT=3100`` sets ``port``, and so on."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_SERVE_", extra="forbid", populate_by_name=True)

    registry_url: str | None = Field(
        None,
        validation_alias="LOCKGATE_REGISTRY_URL",  # the one variable every subcommand reads
        description="registry database URL; None -> the default SQLite file .lockgate/registry.db",
    )
    canary: Path | None = Field(
        None, description="serve this one bundle from disk, without the registry and without auth"
    )
    workers: int = Field(
        default_factory=cores,
        ge=1,
        le=256,
        description="worker processes on one port, each with its own ONNX Runtime sessions, micro-batcher, "
        "registry poller and access cache (default: one per core)",
    )
    metrics_dir: Path | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",  # set by BentoML for its workers
        description="prometheus_client's multiprocess directory: /metrics sums every worker's files",
    )
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    poll_interval: float = Field(1.0, gt=0, le=60, description="seconds between registry generation polls")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="larger request bodies get 413")
    max_batch_rows: int = Field(
        1024, ge=1, description="ceiling on rows per request (the card's input policy may lower it)"
    )
    batching: bool = Field(True, description="merge concurrent requests into one ONNX Runtime call")
    max_ort_batch: int = Field(512, ge=1, description="most rows merged into one ONNX Runtime call")
    access_cache_size: int = Field(10_000, ge=1, description="cached (key, model) access decisions")
    access_cache_seconds: float = Field(
        5.0, gt=0, le=300, description="a cached access decision is asked again after this many seconds"
    )
    fail_closed_after_polls: int = Field(
        3,
        ge=1,
        description="after this many failed registry polls in a row, cached access decisions are dropped "
        "and every caller waits for the registry (503 with Retry-After)",
    )
    max_json_depth: int = Field(
        16, ge=4, le=256, description="deepest nesting of arrays and objects a request body may have"
    )
    header_timeout: float = Field(
        10.0, gt=0, le=300, description="seconds a client may take to send a request's headers (408)"
    )
    max_connections_per_client: int = Field(
        256, ge=1, description="open connections one client address may hold (429 above)"
    )
    allow_extra_columns: bool = Field(
        False,
        description="named-column requests may carry keys the card does not list (ignored); by default "
        "an unknown column is a 422, which catches misspelt names",
    )
    public_details: bool = Field(
        False,
        description="let callers without a key read GET /models/{name} and /v2/models/{name} (the card)",
    )
    metrics_consumer_names: bool = Field(
        False,
        description="label /metrics series with consumer names; by default a short digest of the name",
    )
    intra_op_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads per model")
    timeout: int = Field(10, ge=1, description="seconds before a request is answered with 504")
    shadow_max_inflight: int = Field(
        64,
        ge=1,
        le=10_000,
        description="shadow comparisons running at once; more are dropped and counted, never the request",
    )
    shadow_max_rows: int = Field(
        8192, ge=1, description="rows held by the shadow comparisons running at once; more are dropped"
    )
    gc_full_collection_every: int = Field(
        1000, ge=1, description="generation-1 collections between two full (generation-2) collections"
    )

    capture_rate: float = Field(
        0.01, ge=0, le=1, description="share of requests whose answered rows are captured (0 = off)"
    )
    capture_rates: dict[str, float] = Field(
        default_factory=dict,
        description='per-model capture rates overriding capture_rate, as JSON: {"churn": 0.1}',
    )
    capture_store: Literal["registry", "parquet", "off"] = Field(
        "registry",
        description="where captured rows go: the registry database (or capture_registry), rolling Parquet "
        "files in capture_dir, or nowhere",
    )
    capture_registry: str | None = Field(
        None, description="a database for captured rows other than the registry's (same schema)"
    )
    capture_dir: Path | None = Field(None, description="the directory of the rolling Parquet files")
    capture_queue_rows: int = Field(
        10_000, ge=1, description="rows waiting for the capture writer; more are dropped and counted"
    )
    capture_rows_per_minute: int = Field(
        60_000, ge=1, description="captured rows per minute and worker; more are dropped and counted"
    )
    capture_bytes_per_minute: int = Field(
        64 << 20, ge=1024, description="bytes of captured JSON per minute and worker; more are dropped"
    )
    capture_file_rows: int = Field(50_000, ge=1, description="rows per Parquet file before a new one")
    capture_files: int = Field(48, ge=1, description="Parquet files kept; the oldest are removed")

    @model_validator(mode="after")
    def _capture_rates_are_shares(self) -> ServeSettings:
        bad = {k: v for k, v in self.capture_rates.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"capture_rates {bad} must be shares from 0 to 1 (0.01 = 1 %)")
        if self.capture_store == "parquet" and self.capture_dir is None:
            raise ValueError("capture_store 'parquet' needs capture_dir (--capture-dir DIR)")
        return self

    @model_validator(mode="after")
    def _canary_is_a_directory(self) -> ServeSettings:
        if self.canary is not None and not self.canary.is_dir():
            raise ValueError(
                f"canary bundle {str(self.canary)!r} is not a directory; pass the bundle directory "
                "written by 'lockgate train'"
            )
        return self
