"""API keys: generated with :mod:`secrets`, shown once, stored only as a salted hash.

A key reads ``lg_<key_id>_<secret>``: ``key_id`` (12 hex digits) is stored in clear so a check finds
its row with one indexed lookup; ``secret`` (32 random bytes, url-safe base64) is never stored.

The stored hash is HMAC-SHA256 keyed by the row's salt (``hmac-sha256:<hex>``). A slow password hash
buys nothing against a 256-bit random secret (nobody can enumerate 2**256 guesses) and cost 43 ms of
scrypt per request for anyone sending a known key id with a random secret. Hashes written by earlier
versions (bare hex scrypt) still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from pydantic import BaseModel, ConfigDict

__all__ = [
    "KEY_PATTERN",
    "GeneratedKey",
    "digest_for_cache",
    "generate_key",
    "hash_secret",
    "parse_key",
    "verify_secret",
]

KEY_PATTERN = re.compile(r"^lg_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}
_HMAC_PREFIX = "hmac-sha256:"


class GeneratedKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    plaintext: str
    key_id: str
    salt: str
    key_hash: str


def hash_secret(secret: str, salt: str) -> str:
    """``hmac-sha256:<hex>`` of the secret, keyed by the salt (microseconds, not scrypt's 43 ms)."""
    return _HMAC_PREFIX + hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def _legacy_scrypt(secret: str, salt: str) -> str:
    return hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex()


def generate_key() -> GeneratedKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return GeneratedKey(
        plaintext=f"lg_{key_id}_{secret}", key_id=key_id, salt=salt, key_hash=hash_secret(secret, salt)
    )


def parse_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    m = KEY_PATTERN.match(key)
    return (m.group(1), m.group(2)) if m else None


def verify_secret(secret: str, salt: str, key_hash: str) -> bool:
    """Constant-time check against an HMAC hash, or a scrypt hash stored by an earlier version."""
    if key_hash.startswith(_HMAC_PREFIX):
        return hmac.compare_digest(hash_secret(secret, salt), key_hash)
    return hmac.compare_digest(_legacy_scrypt(secret, salt), key_hash)


def digest_for_cache(key: str) -> bytes:
    """What the in-process cache is keyed by, so it never holds keys in plain text."""
    return hashlib.blake2b(key.encode(), digest_size=16).digest()
