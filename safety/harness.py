"""The gate's one orchestrator: run every check, contain every failure, sign the verdict over every file.

Any exception inside a check, and any return value that is not the check's own :class:`CheckResult`,
becomes ``error`` (never ``pass``); a check whose prerequisites did not pass is recorded as ``skip`` with
the reason and fails the gate (the harness tracks which checks were blocked; it never reads messages);
checks still waiting when the policy's time budget runs out ``fail`` with "not run".

The verdict is an in-toto statement whose subject is the manifest of every file of the bundle (taken
before the checks, and compared again after them), signed with the gate's Ed25519 key when one is given
(:mod:`cascade_registry.attestation`), and written atomically, mode 0644, to ``<bundle>/gate.json``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cascade_registry.artifacts import GATE_FILE, CheckResult, GateReport, write_json_atomic
from cascade_registry.attestation import (
    GatePredicate,
    report_of,
    sign_statement,
    statement_for,
)
from cascade_registry.gate_policy import policy_digest
from cascade_registry.manifest import Manifest, ManifestError, manifest_of
from safety.checks import Check, default_checks, outcome
from safety.context import GateContext
from safety.errors import GateUsageError, SandboxError
from safety.isolation import Isolation
from safety.policy import GatePolicy, load_policy

__all__ = ["run_checks", "run_gate", "tool_version"]


def tool_version() -> str:
    try:
        return version("lockgate")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "unknown"


def _manifest(bundle: Path) -> tuple[Manifest, str]:
    """The bundle's manifest, or an empty one and why it cannot be taken."""
    try:
        return manifest_of(bundle), ""
    except ManifestError as e:
        return Manifest(files=[]), f"{Path(e.path).name} {e.problem}"


def _run_one(ctx: GateContext, check: Check) -> CheckResult:
    try:
        result = check.run(ctx, ctx.policy)
    except SandboxError:
        raise  # the tool itself cannot run models here: a harness error (exit 2), not a verdict
    except Exception as e:  # noqa: BLE001 - the harness contains every failure of a check
        return outcome(check, "error", f"the check itself raised {type(e).__name__}: {e}"[:800])
    if not isinstance(result, CheckResult) or result.name != check.name:
        return outcome(check, "error", f"the check returned {result!r:.200} instead of its CheckResult")
    return result


def run_checks(ctx: GateContext, checks: Sequence[Check]) -> list[CheckResult]:
    """Run ``checks`` in order against ``ctx``; never raises for a check's sake. The names of checks that
    were skipped because a prerequisite did not pass are added to ``ctx.blocked``."""
    results: list[CheckResult] = []
    for check in checks:
        start = time.monotonic()
        blocked = [
            name
            for name in check.requires
            if ctx.results.get(name) is None or ctx.results[name].status != "pass"
        ]
        if blocked:
            ctx.blocked.add(check.name)
            result = outcome(check, "skip", f"not run: {', '.join(blocked)} did not pass")
        elif ctx.remaining() <= 0:
            result = outcome(
                check,
                "fail",
                f"not run: the gate's time budget of {ctx.policy.budget_seconds:g} s "
                "ran out (budget_seconds); the model is too slow to gate",
            )
        else:
            result = _run_one(ctx, check)
        result = result.model_copy(update={"seconds": round(time.monotonic() - start, 3)})
        ctx.results[check.name] = result
        results.append(result)
    return results


def run_gate(
    bundle_dir: Path | str,
    policy: GatePolicy | None = None,
    *,
    registry_url: str | None = None,
    serve: bool = False,
    write: bool = True,
    checks: Sequence[Check] | None = None,
    sign_key: Ed25519PrivateKey | None = None,
    holdout: Path | str | None = None,
    isolation: Isolation | None = None,
) -> GateReport:
    """Gate the bundle at ``bundle_dir`` and (when ``write``) save the signed verdict as ``gate.json``.

    ``sign_key`` signs it (unsigned verdicts are refused by the registry); ``holdout`` is a held-out .npz
    (``holdout_inputs``, ``holdout_labels``, optional ``holdout_segments``) scored instead of the bundle's
    own. Raises :class:`GateUsageError` when the path cannot be gated at all (missing, not a directory,
    gate.json not writable) and :class:`SandboxError` when no sandbox worker can be started; every
    problem *of the bundle* is a failed check in the returned report.
    """
    bundle = Path(bundle_dir).absolute()  # the sandbox worker runs in another working directory
    if not bundle.exists():
        raise GateUsageError(
            f"{bundle} does not exist", "pass the bundle directory written by 'lockgate train'"
        )
    if not bundle.is_dir():
        raise GateUsageError(
            f"{bundle} is not a directory", "pass the bundle directory, not a file inside it"
        )
    holdout_path = Path(holdout).absolute() if holdout is not None else None
    if holdout_path is not None and not holdout_path.is_file():
        raise GateUsageError(f"--holdout {holdout_path} is not a file", "pass a held-out .npz file")
    policy = policy or load_policy()
    before, unreadable = _manifest(bundle)
    ctx = GateContext(
        bundle, policy, registry_url=registry_url, serve=serve, holdout=holdout_path, isolation=isolation
    )
    results = run_checks(ctx, list(checks) if checks is not None else default_checks())
    after, _ = _manifest(bundle)
    if unreadable:
        results.append(outcome("bundle.files", "fail", f"the bundle's files cannot be listed: {unreadable}"))
    elif after != before:
        changed = "; ".join(before.differences(after)[:4])
        results.append(outcome("bundle.files", "fail", f"files changed while being gated: {changed}"))
    card = ctx.card_or_none
    passed = not ctx.blocked and all(r.status in {"pass", "skip"} for r in results)
    predicate = GatePredicate(
        ref=card.ref if card else None,
        passed=passed,
        checks=results,
        policy=policy.model_dump(mode="json"),
        policy_sha256=policy_digest(policy.model_dump(mode="json")),
        tool_version=tool_version(),
        isolation=ctx.isolation.description,
        holdout_sha256=_sha256(holdout_path) if holdout_path is not None else None,
        created_at=datetime.now(UTC),
    )
    statement = statement_for(before, predicate)
    if write:
        envelope = sign_statement(statement, sign_key)
        try:
            write_json_atomic(bundle / GATE_FILE, envelope.model_dump(mode="json", by_alias=True))
        except OSError as e:
            raise GateUsageError(
                f"cannot write {bundle / GATE_FILE}: {e}", "make the bundle directory writable"
            ) from e
    return report_of(statement)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
