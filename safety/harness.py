"""The gate's one orchestrator: run every check, contain every failure, bind the verdict to model.onnx.

Any exception inside a check becomes ``error`` (never ``pass``); a check whose prerequisites did not pass
is recorded as ``skip`` with the reason (the gate has failed already through the prerequisite); checks
still waiting when the policy's time budget runs out ``fail`` with "not run". The report is written
atomically to ``<bundle>/gate.json``.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cascade_registry.artifacts import (
    GATE_FILE,
    MODEL_FILE,
    CheckResult,
    GateReport,
    sha256_file,
    write_json_atomic,
)
from safety.checks import Check, default_checks, outcome
from safety.context import GateContext
from safety.errors import GateUsageError, SandboxError
from safety.policy import GatePolicy, load_policy

__all__ = ["model_digest", "run_checks", "run_gate"]


def model_digest(bundle: Path, max_mb: float) -> str:
    """sha256 of ``bundle/model.onnx`` when it is a regular file of at most ``max_mb``, else ''."""
    path = bundle / MODEL_FILE
    try:
        st = path.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_size <= max_mb * 2**20:
            return sha256_file(path)
    except OSError:
        pass
    return ""


def run_checks(ctx: GateContext, checks: Sequence[Check]) -> list[CheckResult]:
    """Run ``checks`` in order against ``ctx``; never raises for a check's sake."""
    results: list[CheckResult] = []
    for check in checks:
        start = time.monotonic()
        blocked = [
            name
            for name in check.requires
            if ctx.results.get(name) is None or ctx.results[name].status != "pass"
        ]
        if blocked:
            result = outcome(check, "skip", f"not run: {', '.join(blocked)} did not pass")
        elif ctx.remaining() <= 0:
            result = outcome(
                check,
                "fail",
                f"not run: the gate's time budget of {ctx.policy.budget_seconds:g} s "
                "ran out (budget_seconds); the model is too slow to gate",
            )
        else:
            try:
                result = check.run(ctx, ctx.policy)
            except SandboxError:
                raise  # the tool itself cannot run models here: a harness error (exit 2), not a verdict
                if not isinstance(result, CheckResult) or result.name != check.name:
                    result = outcome(
                        check, "error", f"the check returned {result!r} instead of its CheckResult"
                    )
            except Exception as e:  # noqa: BLE001 - the harness contains every failure of a check
                result = outcome(check, "error", f"the check itself raised {type(e).__name__}: {e}"[:800])
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
) -> GateReport:
    """Gate the bundle at ``bundle_dir`` and (when ``write``) save ``gate.json`` in it.

    Raises :class:`GateUsageError` when the path cannot be gated at all (missing, not a directory,
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
    policy = policy or load_policy()
    digest = model_digest(bundle, policy.file.max_size_mb)
    ctx = GateContext(bundle, policy, registry_url=registry_url, serve=serve)
    results = run_checks(ctx, list(checks) if checks is not None else default_checks())
    if model_digest(bundle, policy.file.max_size_mb) != digest:
        results.append(outcome("file.unchanged", "fail", f"{MODEL_FILE} changed while it was being gated"))
    card = ctx.card_or_none
    report = GateReport(
        ref=card.ref if card else None,
        onnx_sha256=digest,
        passed=all(r.status in {"pass", "skip"} for r in results)
        and not any(r.status == "skip" and r.message.startswith("not run") for r in results),
        checks=results,
        policy=policy.model_dump(mode="json"),
        created_at=datetime.now(UTC),
    )
    if write:
        try:
            write_json_atomic(bundle / GATE_FILE, report)
        except OSError as e:
            raise GateUsageError(
                f"cannot write {bundle / GATE_FILE}: {e}", "make the bundle directory writable"
            ) from e
    return report
