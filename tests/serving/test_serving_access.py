"""The gateway's access path in-process, on a real SQLite registry: key hashing, LRU caches, expiry,
fail-closed, and the structure bound on bodies (issue 12, findings 3, 5 and 9)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from cascade_registry import Registry
from cascade_registry.keys import generate_key, parse_key, verify_secret
from cascade_registry.sql_store import SqlRegistryStore
from serving.access import RegistryAccess
from serving.codecs import check_structure
from serving.errors import InvalidInputError, RegistryUnavailableError
from tests.bundles import open_trusting


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(SqlRegistryStore):
    """The real SQL store, counting key look-ups (the registry's own protocol, not a mock)."""

    lookups = 0

    def lookup_key(self, key_id: str):  # noqa: ANN201 - the store's own signature
        CountingStore.lookups += 1
        return super().lookup_key(key_id)


@pytest.fixture
def reg(tmp_path: Path, demo_bundle: Path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with open_trusting(url) as r:
        r.register(demo_bundle)
        r.release("demo:1")
        r.add_consumer("billing", owner="team")
        r.declare("billing", "demo")
        yield r


def test_new_keys_are_hmac_hashed_and_old_scrypt_hashes_still_verify():
    key = generate_key()
    assert key.key_hash.startswith("hmac-sha256:")  # no 43 ms scrypt for a random 256-bit secret
    _, secret = parse_key(key.plaintext)
    assert verify_secret(secret, key.salt, key.key_hash)
    assert not verify_secret(secrets.token_urlsafe(32), key.salt, key.key_hash)
    legacy = hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(key.salt), n=2**14, r=8, p=1, dklen=32, maxmem=64 * 2**20
    ).hex()
    assert verify_secret(secret, key.salt, legacy)
    assert not verify_secret(secrets.token_urlsafe(32), key.salt, legacy)


def test_random_keys_cannot_flush_the_registry_key_cache(tmp_path: Path, demo_bundle: Path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    Registry.open(url).close()
    reg = Registry(CountingStore.open(url), poll_seconds=3600)
    try:
        reg.add_consumer("billing", owner="team")
        key = reg.issue_key("billing")
        assert reg.identify(key).allowed
        CountingStore.lookups = 0
        for i in range(120_000):  # more than the cache holds; malformed keys need no look-up
            assert reg.identify(f"random-{i}").reason == "unknown_key"
        assert reg.identify(key).allowed
        assert CountingStore.lookups == 0  # the real key stayed cached
    finally:
        reg.close()


def test_cached_decisions_expire_and_fail_closed_after_failed_polls(reg: Registry):
    key = reg.issue_key("billing")
    clock = Clock()
    access = RegistryAccess(reg, settle_seconds=0.0, ttl_seconds=5.0, fail_closed_after=3, clock=clock)
    assert access.identify_cached(key) is None
    who = access.identify(key)
    assert who.allowed and access.identify_cached(key) == who
    assert access.lookup("billing", "demo", 1).allowed and access.check("billing", "demo", 1) is not None
    clock.now += 5.1  # older than the time limit: asked again
    assert access.identify_cached(key) is None and access.check("billing", "demo", 1) is None
    access.identify(key)
    access.poll_failed()
    access.poll_failed()
    assert access.identify_cached(key) is not None  # a hiccup or two: still served from the cache
    access.poll_failed()  # the third failed poll in a row: fail closed
    assert access.identify_cached(key) is None
    access.identify(key)
    assert access.identify_cached(key) is None  # nothing is cached while closed
    access.poll_succeeded()
    access.identify(key)
    assert access.identify_cached(key) is not None


def test_an_unreachable_registry_is_a_503_not_a_500():
    broken = RegistryAccess(_Unreachable(), settle_seconds=0.0)
    for ask in (lambda: broken.identify("lg_x"), lambda: broken.lookup("billing", "demo", 1)):
        with pytest.raises(RegistryUnavailableError) as e:
            ask()
        assert e.value.retry_after >= 1 and e.value.code == "registry_unavailable"


class _Unreachable:
    """A registry whose database is gone: every question raises, as SQLAlchemy does."""

    def identify(self, api_key: str):  # noqa: ANN201
        raise ConnectionRefusedError("connection refused")

    def check_consumer(self, consumer: str, model: str, version: int):  # noqa: ANN201
        raise ConnectionRefusedError("connection refused")


@pytest.mark.parametrize(
    "body, code",
    [
        (b"[" * 200_000, "too_many_values"),
        (b"[" * 17 + b"]" * 17, "too_deep"),
        (b'{"a":' * 20 + b"1" + b"}" * 20, "too_deep"),
        (b"[1]," * 2000, "too_many_values"),
    ],
)
def test_structure_bound_refuses_before_parsing(body: bytes, code: str):
    with pytest.raises(InvalidInputError) as e:
        check_structure(body, 1088, 16)
    assert e.value.code == code


def test_structure_bound_accepts_real_bodies():
    rows = b"[" + b",".join([b"[1.0,2.0,3.0]"] * 1024) + b"]"
    check_structure(b'{"model": "demo", "inputs": ' + rows + b"}", 1088, 16)
    check_structure(b'{"model": "demo", "inputs": [{"x[0]": 1, "y": 2}]}', 1088, 16)
    v2 = b'{"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}'
    check_structure(v2, 1088, 16)


def test_each_error_is_a_new_object():
    from serving.codecs import decode_json

    errors = []
    for _ in range(2):
        with pytest.raises(InvalidInputError) as e:
            decode_json(b"[" * 100_000)
        errors.append(e.value)
    assert errors[0] is not errors[1]


def test_refusal_reasons_carry_no_paths():
    from serving.catalog import public_reason

    text = "/srv/models/demo-1: cannot open /srv/models/demo-1/model.onnx or /dev/zero (C:\\x\\y)"
    cleaned = public_reason(text, "/srv/models/demo-1")
    assert "/srv" not in cleaned and "/dev/zero" not in cleaned and "C:\\x" not in cleaned, cleaned
    assert public_reason("the gate report did not pass (sha256 on disk 30395de9…)") == (
        "the gate report did not pass (sha256 on disk 30395de9…)"
    )
    assert public_reason("f1/accuracy and N/A stay") == "f1/accuracy and N/A stay"


@pytest.mark.parametrize("pad", [0, 20_000])
def test_structure_bound_is_the_same_for_small_and_large_bodies(pad: int):
    space = b" " * pad
    for body, code in (
        (b"[" * 17 + space + b"]" * 17, "too_deep"),
        (b'{"a":' * 20 + space + b"1" + b"}" * 20, "too_deep"),
        (b"[1]," * 1100 + space, "too_many_values"),
    ):
        with pytest.raises(InvalidInputError) as e:
            check_structure(body, 1088, 16)
        assert e.value.code == code, (pad, body[:20])
    check_structure(b"[" * 16 + space + b"]" * 16, 1088, 16)
    check_structure(b"[" + b",".join([b"[1,2]"] * 1000) + space + b"]", 1088, 16)


def test_bundle_file_guards_refuse_deep_cards_and_device_links(tmp_path: Path, demo_bundle: Path):
    import shutil

    from serving.errors import BundleRejectedError
    from serving.predictor import OnnxPredictor

    nested = shutil.copytree(demo_bundle, tmp_path / "nested")
    (nested / "card.json").write_text("[" * 50_000 + "]" * 50_000)
    zero = shutil.copytree(demo_bundle, tmp_path / "zero")
    (zero / "gate.json").unlink()
    (zero / "gate.json").symlink_to("/dev/zero")
    for bundle, words in ((nested, "deep"), (zero, "not a regular file")):
        with pytest.raises(BundleRejectedError) as e:
            OnnxPredictor.from_bundle(bundle)
        assert words in str(e.value) and str(tmp_path) not in str(e.value), e.value
