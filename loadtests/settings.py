"""``LoadtestSettings``: the one settings class of ``lockgate loadtest`` (prefix ``LOCKGATE_LOADTEST_``).

Every command-line option has an environment twin: ``--users 20`` = ``LOCKGATE_LOADTEST_USERS=20``,
except the registry, which is ``LOCKGATE_REGISTRY_URL`` for every subcommand.
Durations accept seconds (``90``) or ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.durations import parse_duration
from cascade_registry.location import ENV_VAR

__all__ = ["LoadtestSettings", "parse_duration"]


class LoadtestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKGATE_LOADTEST_", extra="forbid", populate_by_name=True)

    host: str = Field("http://127.0.0.1:3000", description="base URL of the gateway")
    mode: Literal["run", "step", "soak"] = "run"
    users: int = Field(10, ge=1, le=10_000)
    spawn_rate: float = Field(5.0, gt=0, le=1000)
    duration: float = Field(20.0, gt=0, le=7 * 24 * 3600, description="seconds (run and soak)")
    think_time: float = Field(0.0, ge=0, le=60, description="each user waits up to this many s between calls")
    slo: Path | None = Field(None, description="SLO file; None = the packaged default_slo.toml")
    traffic: Path | None = Field(None, description="traffic file (consumers, keys, weights, bundles)")
    registry_url: str | None = Field(
        None, validation_alias=ENV_VAR, description="read models and declarations from this registry"
    )
    use_registry: bool = Field(
        False, description="read the registry even without --registry-url (default file)"
    )
    rotate_keys: bool = Field(False, description="DEMO ONLY: rotate each declared consumer's key to get one")
    refused_share: float | None = Field(None, ge=0, le=1)
    max_batch: int | None = Field(None, ge=1, description="cap rows per request below the model's maximum")
    seed: int | None = Field(None, description="seed for payloads and the traffic mix")
    report_dir: Path = Field(Path(".lockgate/loadtest"), description="CSV, HTML and JSON reports land here")
    ui: bool = False
    ui_host: str = "127.0.0.1"
    ui_port: int = Field(8089, ge=1, le=65535)
    server_pid: int | None = Field(None, ge=1, description="gateway PID; default: found by its port")
    ready_timeout: float = Field(30.0, gt=0)
    step_users: int = Field(5, ge=1, description="users added per step (step mode)")
    start_users: int | None = Field(None, ge=1, description="users of the first step (default: step_users)")
    max_users: int = Field(200, ge=1)
    step_duration: float = Field(10.0, gt=0)
    memory_interval: float = Field(5.0, gt=0, description="seconds between memory samples (soak mode)")
    print_json: bool = Field(
        False, description="--json: print the result as JSON on stdout instead of the tables"
    )
    json_out: Path | None = Field(None, description="also write the result as JSON to this file")
    warmup: float | None = Field(
        None, ge=0, description="soak: load before the measured window; None = 10% of duration, at most 60 s"
    )

    @field_validator(
        "duration", "step_duration", "memory_interval", "think_time", "warmup", "ready_timeout", mode="before"
    )
    @classmethod
    def _durations(cls, v: object) -> object:
        return parse_duration(v) if isinstance(v, str) else v

    @field_validator("host")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+$", v.rstrip("/")):
            raise ValueError(f"host {v!r} is not a base URL like http://127.0.0.1:3000")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _has_traffic_source(self) -> LoadtestSettings:
        if self.traffic is None and self.registry_url is None and not (self.use_registry or self.rotate_keys):
            raise ValueError(
                "no traffic source: pass --traffic FILE (consumers and keys), --registry-url URL, "
                "or --rotate-keys on a demo registry"
            )
        return self

    @property
    def soak_warmup(self) -> float:
        return self.warmup if self.warmup is not None else min(60.0, 0.1 * self.duration)
