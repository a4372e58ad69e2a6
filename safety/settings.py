"""``SafetySettings``: the defaults of ``lockgate check`` (and ``registry revalidate``) from the
environment, and :func:`read_sign_key` for the signing key they name."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.attestation import AttestationError, load_private_key
from cascade_registry.manifest import ManifestError, read_bounded
from safety.errors import GateUsageError

__all__ = ["SafetySettings", "read_sign_key"]


class SafetySettings(BaseSettings):
    """Defaults of ``lockgate check`` from the environment (``LOCKGATE_SAFETY_*``); flags override them."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_SAFETY_", extra="ignore")

    policy: Path | None = None
    sign_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("LOCKGATE_GATE_SIGN_KEY", "LOCKGATE_SAFETY_SIGN_KEY"),
        description="the gate's Ed25519 private key: PEM text, or the path of a PEM file",
    )


def read_sign_key(source: str | Path, what: str) -> Ed25519PrivateKey:
    """The private key in PEM text ``source`` or in the file it names; raises :class:`GateUsageError`."""
    text = str(source)
    try:
        pem = text.lstrip().startswith("-----BEGIN")
        data = text.encode("ascii") if pem else read_bounded(text, 64 * 1024)
        return load_private_key(data, what)
    except (ManifestError, AttestationError, UnicodeEncodeError) as e:
        raise GateUsageError(
            f"{what}: {e}", "make a key pair with 'lockgate keygen --out gate-key'"
        ) from None
