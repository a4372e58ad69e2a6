"""The registry's Python API: :class:`Registry`, a small façade that validates input, talks to a
:class:`~cascade_registry.store.RegistryStore` and keeps the access cache honest.

    reg = Registry.open(None)                       # .lockgate/registry.db, or a postgresql+psycopg:// URL
    reg.register("out/churn-3")
    reg.add_consumer("web", kind="service", owner="team-web"); key = reg.issue_key("web")
    reg.declare("web", "churn"); reg.release("churn:3")
    reg.release_many(["a:2", "b:2"])                 # atomically, upstream first
    reg.pins("b:1"); reg.serving_plan()             # the cascade the gateway composes
    reg.start_rollout("b:2", "canary", share="10%")  # b:2 answers 10 % of direct calls to b
    reg.promote("b:2"); reg.rollback("b")
    reg.check_access(key, "churn").allowed          # True
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from cascade_registry.access import AccessCache
from cascade_registry.artifacts import NAME_PATTERN, GateReport, InvalidBundleError, ModelBundle, ModelRef
from cascade_registry.attestation import AttestationError, key_id, load_public_key, public_key_pem
from cascade_registry.entities import (
    CONSOLE_ROLES,
    ROLLOUT_MODES,
    STICKINESS,
    AccessDecision,
    ApiKeyInfo,
    AuditEntry,
    ConsoleUserInfo,
    ConsumerInfo,
    DeclarationInfo,
    ImpactReport,
    ModelSummary,
    ModelVersionInfo,
    PinInfo,
    RolloutInfo,
    ServingEntry,
    TransitionInfo,
    TrustedKeyInfo,
    WaiverInfo,
)
from cascade_registry.errors import (
    BundleRejectedError,
    ConflictError,
    GateError,
    InvalidInputError,
    LoginError,
)
from cascade_registry.feedback import FeedbackMethods
from cascade_registry.gate_policy import GatePolicy, policy_digest
from cascade_registry.keys import generate_key, hash_secret, verify_secret
from cascade_registry.manifest import ManifestError, manifest_of
from cascade_registry.revalidation import open_revalidation
from cascade_registry.sql_graph import CascadeRows
from cascade_registry.sql_release import Waiver
from cascade_registry.sql_store import SqlRegistryStore
from cascade_registry.store import RegistryStore
from cascade_registry.trust import GateVerdict, trusted_key_map, verify_gate
from cascade_registry.version_range import VersionRange

__all__ = ["Registry", "parse_share"]

_NAME = re.compile(NAME_PATTERN)
#: a revalidation envelope holds a few KB; anything near this is hostile
_MAX_EVIDENCE_BYTES = 1 << 20
_KINDS = ("service", "model")


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInputError(
            f"{what} name {value!r} is malformed",
            "use lowercase letters, digits, '-' and '_', starting with a letter (at most 63 characters)",
        )
    return value


def _ref(value: str | ModelRef) -> ModelRef:
    if isinstance(value, ModelRef):
        return value
    try:
        return ModelRef.parse(str(value))
    except ValueError as e:
        first = str(e).splitlines()[0] if "\n" in str(e) else str(e)
        raise InvalidInputError(f"{value!r} is not a valid NAME:VERSION ({first})", "e.g. churn:3") from None


def parse_share(value: float | str) -> float:
    """A canary share as a fraction in (0, 1]: ``"10%"``, ``"2.5%"``, ``10`` (percent) or ``0.1`` as a float
    below 1 given in Python. Raises :class:`InvalidInputError` for 0, more than 100 % or anything else."""
    text = str(value).strip()
    percent = text.endswith("%") or not isinstance(value, float)
    try:
        number = float(text.removesuffix("%"))
    except ValueError:
        number = float("nan")
    share = number / 100 if percent else number
    if not 0 < share <= 1:  # also refuses nan
        raise InvalidInputError(
            f"a canary share must be more than 0 % and at most 100 %, got {text[:20]!r}",
            "e.g. --canary 10% (or 2.5%)",
        )
    return round(share, 6)


def _text(value: Any, what: str, limit: int = 128) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty text", f"give a {what}")
    value = value.strip()
    if len(value) > limit or any(ord(ch) < 32 for ch in value):
        raise InvalidInputError(f"{what} must be one line of at most {limit} characters")
    return value


class Registry(FeedbackMethods):
    """Versions, consumers, keys, declarations and cascade rules. Build with :meth:`open`."""

    def __init__(self, store: RegistryStore, poll_seconds: float = 1.0, created: bool = False) -> None:
        self.store = store
        self.created = created
        self._access = AccessCache(store, poll_seconds=poll_seconds)

    @classmethod
    def open(cls, url: str | None = None, poll_seconds: float = 1.0, create: bool = True) -> Registry:
        """Open (creating and migrating as needed) the registry at ``url``.

        ``None`` -> the SQLite file ``.lockgate/registry.db``; a path or ``sqlite:///PATH``; or
        ``postgresql+psycopg://USER@HOST:PORT/DB``. With ``create=False`` a registry that does not exist
        yet is an error instead of being created (``created`` tells which happened).
        Raises :class:`RegistryUnavailableError`.
        """
        store = SqlRegistryStore.open(url, create=create)
        return cls(store, poll_seconds=poll_seconds, created=store.db.created)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.store.display_url

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _changed(self, result: Any) -> Any:
        self._access.invalidate()
        return result

    # ------------------------------------------------------------------------------ versions
    def register(
        self, bundle_dir: str | Path, actor: str = "cli", owner: str | None = None
    ) -> ModelVersionInfo:
        """Validate the bundle with :meth:`ModelBundle.load`, take the manifest of every file, and record it
        with its card. A signed gate verdict that verifies moves it on to gated_passed or gated_failed; one
        that does not leaves it registered (``record_gate`` then says why).

        The first version of a model name records its ``owner`` (default ``actor``): the one person or team
        whose waiver a release affecting that model accepts. A later version naming another owner is
        refused (:class:`OwnerError`). Card upstreams record the model consumer's declarations and the card
        pins in the same transaction."""
        actor = _text(actor, "actor")
        owner = None if owner is None else _text(owner, "owner")
        path = Path(bundle_dir).resolve()
        try:
            bundle = ModelBundle.load(path)
            manifest = manifest_of(path)
        except InvalidBundleError as e:
            raise BundleRejectedError(f"cannot register {bundle_dir}: {e.problem}", e.fix) from None
        except ManifestError as e:
            raise BundleRejectedError(
                f"cannot register {bundle_dir}: {e.path} {e.problem}",
                "rebuild the bundle with 'lockgate train'",
            ) from None
        verdict: GateVerdict | None = None
        if bundle.gate_path.exists() or bundle.gate_path.is_symlink():
            try:
                verdict = self._verify(bundle, manifest=None)
            except GateError:
                verdict = None
        if verdict is not None and verdict.manifest != manifest:
            verdict = None
        return self._changed(self.store.register_version(bundle, manifest, verdict, actor, owner))

    def get(self, ref: str | ModelRef) -> ModelVersionInfo:
        return self.store.get_version(_ref(ref))

    def versions(self, name: str | None = None) -> list[ModelVersionInfo]:
        """Every version of ``name`` (every registered version when None), oldest first."""
        return self.store.list_versions(None if name is None else _name(name, "model"))

    def released(self) -> list[ModelVersionInfo]:
        """The currently released version of each model."""
        return self.store.released_versions()

    def transitions(self, ref: str | ModelRef) -> list[TransitionInfo]:
        return self.store.transitions(_ref(ref))

    def _verify(self, bundle: ModelBundle, manifest: Any) -> GateVerdict:
        try:
            trusted = trusted_key_map(self.store.list_trusted_keys())
        except AttestationError as e:
            raise GateError(f"the registry's trusted keys cannot be read: {e}") from None
        return verify_gate(bundle.path, bundle.ref, trusted, self.store.min_policy(), manifest)

    def _gated_bundle(self, info: ModelVersionInfo) -> GateVerdict:
        try:
            bundle = ModelBundle.load(info.bundle_path)
        except InvalidBundleError as e:
            raise GateError(f"{info.ref}'s bundle is no longer loadable: {e.problem}", e.fix) from None
        if bundle.onnx_sha256 != info.onnx_sha256 or bundle.ref != info.ref:
            raise GateError(
                f"{info.ref}'s model.onnx changed since it was registered",
                "register the new file as a new version",
            )
        verdict = self._verify(bundle, info.manifest)
        if verdict.report.onnx_sha256 != info.onnx_sha256:
            raise GateError(
                f"the gate report in {bundle.path} was made for another model file "
                f"(sha256 {verdict.report.onnx_sha256[:12]}…)",
                f"run 'lockgate check {bundle.path}' again",
            )
        return verdict

    def record_gate(self, ref: str | ModelRef, actor: str = "cli") -> ModelVersionInfo:
        """Verify the bundle's signed ``gate.json`` and move the version to gated_passed or gated_failed."""
        actor = _text(actor, "actor")
        info = self.get(ref)
        verdict = self._gated_bundle(info)
        report = verdict.report
        return self._changed(
            self.store.record_gate(info.ref, report.passed, report.onnx_sha256, actor, verdict.key_id)
        )

    def release(
        self,
        ref: str | ModelRef,
        waiver: str | None = None,
        actor: str = "cli",
        owner: str | None = None,
    ) -> ModelVersionInfo:
        """Release one version (see :meth:`release_many`)."""
        return self.release_many([ref], waiver=waiver, actor=actor, owner=owner)[0]

    def release_many(
        self,
        refs: list[str | ModelRef],
        waiver: str | None = None,
        actor: str = "cli",
        owner: str | None = None,
    ) -> list[ModelVersionInfo]:
        """Release ``refs`` atomically: one transaction, upstreams first, any refusal -> nothing released.

        Each needs a passing, signed, trusted gate verdict over exactly its files. The cascade rules
        (:mod:`cascade_registry.sql_release`): a version is only released with every pin on a version that
        is or was released (or in the batch); a stale version, or a release leaving a released downstream
        version on an older pin, needs ``waiver`` (the reason) from ``owner``, who must be the recorded owner
        of every model it is needed for (:class:`OwnerError` otherwise). Returns them in release order."""
        actor = _text(actor, "actor")
        if not refs or len(refs) > 64:
            raise InvalidInputError(f"release takes 1 to 64 versions, got {len(refs)}")
        checked: Waiver | None = None
        if waiver is not None:
            reason = _text(waiver, "waiver reason", limit=500)
            if owner is None:
                raise InvalidInputError(
                    "a waiver names its owner", "add --owner NAME: the owner of the models it is for"
                )
            checked = Waiver(reason, _text(owner, "owner"))
        shas: dict[ModelRef, str] = {}
        for ref in refs:
            info = self.get(ref)
            shas[info.ref] = self._passing_sha(info, "released")
        return self._changed(self.store.release_versions(list(shas), shas, checked, actor))

    # ------------------------------------------------------------------------------ rollouts
    def _passing_sha(self, info: ModelVersionInfo, what: str) -> str:
        report = self._gated_bundle(info).report
        failed = [c.name for c in report.checks if c.status in ("fail", "error")]
        if not report.passed or failed:
            raise GateError(
                f"refused: {info.ref} failed the safety gate ({', '.join(failed) or 'no checks'}), so it "
                f"cannot be {what}",
                "fix the model, re-export and re-run 'lockgate check'",
            )
        return report.onnx_sha256

    def start_rollout(
        self,
        ref: str | ModelRef,
        mode: str,
        share: float | str | None = None,
        sticky: str = "request_id",
        actor: str = "cli",
    ) -> RolloutInfo:
        """Roll ``ref`` out beside its model's released version (:mod:`cascade_registry.sql_rollout`):
        ``shadow`` (it runs on every request, its answers are never returned) or ``canary`` (it answers
        ``share`` of the direct requests, e.g. "10%", sticky per ``request_id`` or per ``consumer``). Needs a
        passing, signed gate verdict over exactly its files, as a release does."""
        actor = _text(actor, "actor")
        if mode not in ROLLOUT_MODES:
            raise InvalidInputError(f"rollout mode {mode!r} is unknown", "use 'shadow' or 'canary'")
        if sticky not in STICKINESS:
            raise InvalidInputError(f"stickiness {sticky!r} is unknown", "use 'request_id' or 'consumer'")
        if mode == "shadow" and share is not None:
            raise InvalidInputError("a shadow mirrors every request: it takes no share", "drop the share")
        if mode == "canary" and share is None:
            raise InvalidInputError("a canary needs its share", "e.g. --canary 10%")
        fraction = 1.0 if share is None else parse_share(share)
        info = self.get(ref)
        sha = self._passing_sha(info, f"rolled out as a {mode}")
        return self._changed(self.store.start_rollout(info.ref, mode, fraction, sticky, sha, actor))

    def rollout(self, name: str) -> RolloutInfo | None:
        """The rollout of ``name`` in progress, or None."""
        found = self.store.rollouts(_name(name, "model"), active_only=True)
        return found[0] if found else None

    def rollouts(self, name: str) -> list[RolloutInfo]:
        """Every rollout of ``name``, newest first."""
        return self.store.rollouts(_name(name, "model"))

    def promote(
        self, ref: str | ModelRef, waiver: str | None = None, actor: str = "cli", owner: str | None = None
    ) -> tuple[RolloutInfo, ModelVersionInfo]:
        """Release the candidate of the rollout in progress (all the rules of :meth:`release_many`) and end
        the rollout; returns (the ended rollout, the released version)."""
        actor = _text(actor, "actor")
        checked = None
        if waiver is not None:
            if owner is None:
                raise InvalidInputError("a waiver names its owner", "add --owner NAME")
            checked = Waiver(_text(waiver, "waiver reason", limit=500), _text(owner, "owner"))
        info = self.get(ref)
        sha = self._passing_sha(info, "promoted")
        return self._changed(self.store.promote_rollout(info.ref, sha, checked, actor))

    def rollback(self, name: str, actor: str = "cli") -> RolloutInfo:
        """End the rollout of ``name`` in progress (the live version answers everything again), or, when none
        is and the last one was promoted, release the version that promote replaced again."""
        name, actor = _name(name, "model"), _text(actor, "actor")
        history = self.store.rollouts(name)
        if history and history[0].ended_at is None:
            return self._changed(self.store.end_rollout(name, actor))
        if not history or history[0].outcome != "promoted":
            raise ConflictError(
                f"nothing to roll back: {name} has no rollout in progress and its last one was not promoted",
                f"release the version you want: 'lockgate registry release {name}:VERSION'",
            )
        sha = self._passing_sha(self.get(history[0].live), "released again")
        return self._changed(self.store.undo_promote(history[0], sha, actor))

    def retire(self, ref: str | ModelRef, reason: str, actor: str = "cli") -> ModelVersionInfo:
        return self._changed(
            self.store.retire_version(_ref(ref), _text(actor, "actor"), _text(reason, "reason", 500))
        )

    # ------------------------------------------------------------------------------ cascade pins
    def pins(self, ref: str | ModelRef) -> list[PinInfo]:
        """The effective pins of one version: the upstream versions the gateway composes it with."""
        return self.store.pins(_ref(ref))

    def record_pin(
        self, consumer_ref: str | ModelRef, upstream_ref: str | ModelRef, evidence: dict[str, Any], actor: str
    ) -> PinInfo:
        """Move ``consumer_ref``'s pin on its upstream to ``upstream_ref``.

        ``evidence["attestation"]`` must be the signed revalidation statement that
        ``lockgate registry revalidate`` writes (:mod:`cascade_registry.revalidation`): signed by a trusted
        gate key, passed, about exactly these two registered model files, under the consumer's gate policy.
        The stored evidence is the statement's metrics before/after plus the envelope."""
        consumer, upstream = _ref(consumer_ref), _ref(upstream_ref)
        actor = _text(actor, "actor")
        if not isinstance(evidence, dict) or "attestation" not in evidence:
            raise InvalidInputError(
                "a pin needs evidence with a signed 'attestation'", "run 'lockgate registry revalidate'"
            )
        if len(json.dumps(evidence, default=str)) > _MAX_EVIDENCE_BYTES:
            raise InvalidInputError(
                f"the pin's evidence is larger than {_MAX_EVIDENCE_BYTES // 1024} KB",
                "pass the envelope 'lockgate registry revalidate' writes, nothing else",
            )
        try:
            trusted = trusted_key_map(self.store.list_trusted_keys())
            statement, signer = open_revalidation(evidence["attestation"], trusted)
        except AttestationError as e:
            raise GateError(f"refused: the revalidation evidence does not verify: {e}") from None
        p = statement.predicate
        if (p.consumer, p.upstream) != (consumer, upstream) or not p.passed:
            raise GateError(
                f"refused: the evidence is about {p.consumer} on {p.upstream} "
                f"({'passed' if p.passed else 'failed'}), not a pass of {consumer} on {upstream}",
                f"run 'lockgate registry revalidate {consumer} --upstream {upstream}'",
            )
        policy = self.gate_report(consumer).policy
        if policy_digest(policy) != p.policy_sha256:
            raise GateError(
                f"refused: the revalidation ran under another policy than {consumer}'s gate verdict",
                f"run 'lockgate registry revalidate {consumer} --upstream {upstream}' without --policy",
            )
        stored = {
            "before": p.before,
            "after": p.after,
            "previous": str(p.previous),
            "holdout_rows": p.holdout_rows,
            "key_id": signer,
            "attestation": evidence["attestation"],
        }
        return self._changed(self.store.record_pin(consumer, upstream, statement.sha256(), stored, actor))

    def serving_plan(self) -> list[ServingEntry]:
        """What the gateway loads: every released version (role 'release') and every version a served one
        is pinned to that is not itself released (role 'pin'), each with its effective pins."""
        return self.store.serving_plan()

    # ------------------------------------------------------------------------------ trust roots
    def trust_key(self, public_key: str, label: str, actor: str = "cli") -> TrustedKeyInfo:
        """Accept gate verdicts signed by the Ed25519 ``public_key`` (PEM text, see ``lockgate keygen``)."""
        try:
            key = load_public_key(public_key)
        except AttestationError as e:
            raise InvalidInputError(str(e), "pass the .pub file written by 'lockgate keygen'") from None
        return self._changed(
            self.store.add_trusted_key(
                key_id(key), public_key_pem(key), _text(label, "label"), _text(actor, "actor")
            )
        )

    def trusted_keys(self) -> list[TrustedKeyInfo]:
        return self.store.list_trusted_keys()

    def distrust_key(self, key_id_: str, actor: str = "cli") -> TrustedKeyInfo:
        """Stop accepting verdicts signed by ``key_id_`` (already recorded verdicts stay recorded)."""
        return self._changed(
            self.store.remove_trusted_key(_text(key_id_, "key id", 64), _text(actor, "actor"))
        )

    def min_policy(self) -> GatePolicy:
        """The minimum gate policy a verdict must have been made under (default: the shipped policy)."""
        return self.store.min_policy()

    def set_min_policy(self, policy: GatePolicy | dict[str, Any], actor: str = "cli") -> GatePolicy:
        try:
            checked = policy if isinstance(policy, GatePolicy) else GatePolicy.model_validate(policy)
        except ValueError as e:
            raise InvalidInputError(f"not a valid gate policy: {str(e).splitlines()[0]}") from None
        return self._changed(self.store.set_min_policy(checked, _text(actor, "actor")))

    # ------------------------------------------------------------------------------ consumers and keys
    def add_consumer(
        self, name: str, kind: str = "service", owner: str | None = None, actor: str = "cli"
    ) -> ConsumerInfo:
        """A service (an API caller) or a model; ``owner`` defaults to ``actor``."""
        if kind not in _KINDS:
            raise InvalidInputError(f"consumer kind {kind!r} is unknown", "use 'service' or 'model'")
        actor = _text(actor, "actor")
        owner = _text(owner if owner is not None else actor, "owner")
        return self._changed(self.store.add_consumer(_name(name, "consumer"), kind, owner, actor))

    def consumers(self) -> list[ConsumerInfo]:
        return self.store.list_consumers()

    def consumer(self, name: str) -> ConsumerInfo:
        return self.store.get_consumer(_name(name, "consumer"))

    def revoke_consumer(self, name: str, actor: str = "cli") -> ConsumerInfo:
        return self._changed(self.store.revoke_consumer(_name(name, "consumer"), _text(actor, "actor")))

    def issue_key(self, consumer: str, actor: str = "cli") -> str:
        """A new API key for ``consumer``; the plain text is returned once and never stored."""
        key = generate_key()
        self._changed(
            self.store.add_key(_name(consumer, "consumer"), key, _text(actor, "actor"), rotate=False)
        )
        return key.plaintext

    def rotate_key(self, consumer: str, actor: str = "cli") -> str:
        """Revoke the consumer's active keys (if any) and issue a new one, in one transaction."""
        key = generate_key()
        self._changed(
            self.store.add_key(_name(consumer, "consumer"), key, _text(actor, "actor"), rotate=True)
        )
        return key.plaintext

    def revoke_key(self, consumer: str, key_id: str | None = None, actor: str = "cli") -> list[str]:
        """Revoke one key (by its id) or all active keys of ``consumer``; returns the revoked key ids."""
        return self._changed(
            self.store.revoke_keys(_name(consumer, "consumer"), _text(actor, "actor"), key_id)
        )

    def keys(self, consumer: str) -> list[ApiKeyInfo]:
        return self.store.list_keys(_name(consumer, "consumer"))

    # ------------------------------------------------------------------------------ declarations
    def declare(
        self, consumer: str, model_name: str, versions: str | None = None, actor: str = "cli"
    ) -> DeclarationInfo:
        """Consumer may call ``model_name`` (``versions`` e.g. '>=2,<5'; None = any). Refuses cycles."""
        normalized = VersionRange.normalize(versions)
        return self._changed(
            self.store.declare(
                _name(consumer, "consumer"), _name(model_name, "model"), normalized, _text(actor, "actor")
            )
        )

    def undeclare(self, consumer: str, model_name: str, actor: str = "cli") -> None:
        self._changed(
            self.store.undeclare(
                _name(consumer, "consumer"), _name(model_name, "model"), _text(actor, "actor")
            )
        )

    def declarations(
        self, consumer: str | None = None, model_name: str | None = None
    ) -> list[DeclarationInfo]:
        return self.store.list_declarations(
            None if consumer is None else _name(consumer, "consumer"),
            None if model_name is None else _name(model_name, "model"),
        )

    # ------------------------------------------------------------------------------ hot path
    def check_access(
        self, api_key: str | None, model_name: str, version: int | None = None
    ) -> AccessDecision:
        """May the holder of ``api_key`` call ``model_name`` (``version``; None = the released one)?

        Answered from an in-process cache, refreshed within ``poll_seconds`` of any change anywhere."""
        return self._access.check(api_key, model_name, version)

    def check_consumer(self, consumer: str, model_name: str, version: int | None = None) -> AccessDecision:
        return self._access.check_consumer(consumer, model_name, version)

    def identify(self, api_key: str | None) -> AccessDecision:
        """The consumer holding ``api_key`` (allowed) or why the key is refused, before any model is named."""
        return self._access.identify(api_key)

    def generation(self) -> int:
        """A counter bumped by every write (in any process); cheap to poll for cache refreshes."""
        return self.store.generation()

    # ------------------------------------------------------------------------------ cascade and log
    def impact(self, name: str) -> ImpactReport:
        return self.store.impact(_name(name, "model"))

    def waivers(self, name: str | None = None) -> list[WaiverInfo]:
        return self.store.waivers(None if name is None else _name(name, "model"))

    def cascade(self) -> CascadeRows:
        return self.store.cascade()

    def audit(self, subject: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        if limit is not None and limit < 1:
            raise InvalidInputError(f"limit must be positive, got {limit}")
        return self.store.audit(subject, limit)

    # ------------------------------------------------------------------------------ web console
    def add_console_user(
        self, name: str, password: str, role: str = "viewer", actor: str = "cli"
    ) -> ConsoleUserInfo:
        """A person who may log in to ``lockgate console``; only a salted scrypt hash of the password is kept
        (the role ``viewer`` reads, ``operator`` may also act)."""
        if role not in CONSOLE_ROLES:
            raise InvalidInputError(
                f"console role {role!r} is unknown", f"use one of {', '.join(CONSOLE_ROLES)}"
            )
        if not isinstance(password, str) or not 8 <= len(password) <= 256:
            raise InvalidInputError(
                "a console password must be 8 to 256 characters", "choose a longer password"
            )
        salt = secrets.token_hex(16)
        return self.store.add_console_user(
            _name(name, "console user"), role, salt, hash_secret(password, salt), _text(actor, "actor")
        )

    def console_users(self) -> list[ConsoleUserInfo]:
        return self.store.list_console_users()

    def console_user(self, name: str) -> ConsoleUserInfo:
        return self.store.get_console_user(_name(name, "console user"))

    def disable_console_user(self, name: str, actor: str = "cli") -> ConsoleUserInfo:
        return self.store.disable_console_user(_name(name, "console user"), _text(actor, "actor"))

    def login(self, name: str, password: str) -> ConsoleUserInfo:
        """Check a console user's password (recorded as ``console.login``); raises :class:`LoginError`."""
        found = self.store.console_user_secret(name) if _NAME.match(str(name)) else None
        salt, digest = (found[1], found[2]) if found else ("00" * 16, "")
        ok = verify_secret(str(password)[:256], salt, digest)  # hashed even for unknown names (timing)
        if found is None or not ok or found[0].disabled_at is not None:
            raise LoginError("wrong console user name or password", "check both, or ask an operator")
        self.store.record_console_login(found[0].name)
        return found[0]

    def summaries(self) -> list[ModelSummary]:
        """Every model at a glance (released version, status, consumers, last gate result), by name."""
        return self.store.model_summaries()

    def keys_by_consumer(self) -> dict[str, list[ApiKeyInfo]]:
        """Every API key's public half, by consumer, in one read (never a secret)."""
        return self.store.keys_by_consumer()

    def gate_report(self, ref: str | ModelRef) -> GateReport:
        """The bundle's gate report, verified as :meth:`release` verifies it; raises :class:`GateError`."""
        return self._gated_bundle(self.get(ref)).report

    def audit_page(
        self,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """Up to ``limit`` audit entries, newest first, with id below ``before``; filters match a part of the
        subject, the exact actor, and the start of the action."""
        if not 1 <= limit <= 1000:
            raise InvalidInputError(f"limit must be 1..1000, got {limit}")
        return self.store.audit_page(subject, actor, action, before, limit)
