"""``SafetySettings``: the defaults of ``lockgate check`` from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SafetySettings"]


class SafetySettings(BaseSettings):
    """Defaults of ``lockgate check`` from the environment (``LOCKGATE_SAFETY_*``); flags override them."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_SAFETY_", extra="ignore")

    policy: Path | None = None
    sign_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("LOCKGATE_GATE_SIGN_KEY", "LOCKGATE_SAFETY_SIGN_KEY"),
        description="the gate's Ed25519 private key: PEM text, or the path of a PEM file",
    )
