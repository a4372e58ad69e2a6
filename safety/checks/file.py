"""Checks on the file itself (issue check 1): size, sha256, protobuf, external data, checker, opset, domains.

Parsing happens in the sandbox (:meth:`GateContext.inspection`) with external data *not* loaded; the
external-data references are judged here from their strings and ``lstat`` before the checker or ONNX
Runtime (which would open them) ever runs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from cascade_registry.artifacts import MODEL_FILE, CheckResult, sha256_file
from safety.checks.base import outcome
from safety.context import GateContext
from safety.policy import GatePolicy

__all__ = [
    "ChecksumCheck",
    "DomainCheck",
    "ExternalDataCheck",
    "OnnxCheckerCheck",
    "OpsetCheck",
    "ParseCheck",
    "SizeCheck",
    "external_data_problem",
]


class SizeCheck:
    name = "file.size"
    requires: tuple[str, ...] = ()
    description = "model.onnx is a regular file (not a link) within the size limit"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        path = ctx.model_path
        limit = policy.file.max_size_mb
        try:
            st = path.lstat()
        except FileNotFoundError:
            return outcome(self, "fail", f"{MODEL_FILE} is missing from the bundle", limit=limit)
        if stat.S_ISLNK(st.st_mode):
            return outcome(
                self,
                "fail",
                f"{MODEL_FILE} is a symbolic link; the bundle must hold the file itself",
                limit=limit,
            )
        if not stat.S_ISREG(st.st_mode):
            return outcome(self, "fail", f"{MODEL_FILE} is not a regular file", limit=limit)
        size_mb = round(st.st_size / 2**20, 3)
        if st.st_size == 0:
            return outcome(self, "fail", f"{MODEL_FILE} is empty", value=0.0, limit=limit)
        if size_mb > limit:
            return outcome(
                self,
                "fail",
                f"{MODEL_FILE} is {size_mb} MB, above the {limit} MB limit (file.max_size_mb)",
                value=size_mb,
                limit=limit,
            )
        return outcome(self, "pass", value=size_mb, limit=limit)


class ChecksumCheck:
    name = "file.sha256"
    requires = ("file.size", "card.schema")
    description = "the sha256 of model.onnx equals card.export.onnx_sha256"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        digest = sha256_file(ctx.model_path)
        claimed = ctx.card.export.onnx_sha256
        if digest != claimed:
            return outcome(
                self,
                "fail",
                f"{MODEL_FILE} sha256 is {digest[:16]}…, the card says {claimed[:16]}… "
                "(the file changed after export; re-export the bundle)",
                value=digest,
                limit=claimed,
            )
        return outcome(self, "pass", value=digest[:16], limit="card.export.onnx_sha256")


class ParseCheck:
    name = "file.parse"
    requires = ("file.size",)
    description = "the protobuf parses as an ONNX ModelProto (external data not loaded)"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        run = ctx.inspection()
        event = run.first("inspected")
        if event is None:
            return outcome(self, "fail", f"parsing was not completed: {run.death()}")
        if not event["parsed"]:
            return outcome(self, "fail", f"{MODEL_FILE} is not a valid ONNX protobuf: {event['error']}")
        return outcome(
            self,
            "pass",
            value={"ir_version": event["ir_version"], "nodes": event["nodes"]},
            message=f"producer: {event['producer'] or 'unknown'}",
        )


def _inspected(ctx: GateContext) -> dict[str, Any]:
    event = ctx.inspection().first("inspected")
    assert event is not None and event["parsed"], "file.parse passed, so the inspection exists"
    return event


def external_data_problem(bundle: Path, location: str, allowed: bool) -> str | None:
    """Why an external-data ``location`` is refused, or None when it is a safe file inside ``bundle``.

    Decided from the string and ``lstat`` only: nothing is opened.
    """
    if not location:
        return "has no location"
    if "\x00" in location:
        return "contains a NUL byte"
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or location.startswith(("/", "\\")):
        return "is an absolute path"
    if ".." in posix.parts or ".." in windows.parts:
        return "contains '..' (it would leave the bundle)"
    if not allowed:
        return "is external data, which the policy refuses (file.allow_external_data = false)"
    current = bundle
    for part in posix.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except OSError:
            return "does not exist inside the bundle"
        if stat.S_ISLNK(st.st_mode):
            return f"goes through the symbolic link {current.relative_to(bundle)}"
    if not stat.S_ISREG(os.lstat(current).st_mode):
        return "is not a regular file"
    return None


class ExternalDataCheck:
    name = "file.external_data"
    requires = ("file.parse",)
    description = (
        "no external-data reference leaves the bundle (absolute, '..', links); refused before opening"
    )

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        refs = _inspected(ctx)["external"]
        problems = []
        for ref in refs:
            why = external_data_problem(ctx.bundle, ref["location"], policy.file.allow_external_data)
            if why:
                problems.append(f"tensor {ref['tensor']!r} -> {ref['location']!r} {why}")
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            return outcome(
                self,
                "fail",
                "; ".join(problems[:3]) + more + "; nothing was opened",
                value=len(problems),
                limit=0,
            )
        return outcome(
            self,
            "pass",
            value=len(refs),
            limit=0 if not policy.file.allow_external_data else None,
            message="no external data" if not refs else f"{len(refs)} external tensor(s) inside the bundle",
        )


class OnnxCheckerCheck:
    name = "file.checker"
    requires = ("file.external_data",)
    description = "onnx.checker.check_model(full_check=True) accepts the model"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        run = ctx.run_checker()
        event = run.first("checked")
        if event is None:
            return outcome(self, "fail", f"the checker did not finish: {run.death()}")
        if not event["ok"]:
            return outcome(self, "fail", f"onnx.checker refused the model: {event['error']}")
        return outcome(self, "pass", message="full check (shape inference included)")


class OpsetCheck:
    name = "file.opset"
    requires = ("file.parse",)
    description = "every imported opset lies in the policy's range for its domain"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        opsets: dict[str, int] = _inspected(ctx)["opsets"]
        ranges = policy.file.opsets
        problems = []
        for domain, version in sorted(opsets.items()):
            if domain not in ranges:
                continue  # a domain without a range is judged by file.domains
            low, high = ranges[domain]
            if not low <= version <= high:
                problems.append(f"{domain} opset {version} is outside [{low}, {high}]")
        if "ai.onnx" not in opsets:
            problems.append("the model imports no standard (ai.onnx) opset")
        limit = {d: list(r) for d, r in ranges.items()}
        if problems:
            return outcome(
                self,
                "fail",
                "; ".join(problems) + " (re-export with a supported target_opset or widen file.opsets)",
                value=opsets,
                limit=limit,
            )
        return outcome(self, "pass", value=opsets, limit=limit)


class DomainCheck:
    name = "file.domains"
    requires = ("file.parse",)
    description = "only allowed operator domains (standard and ai.onnx.ml), sub-graphs and functions included"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        event = _inspected(ctx)
        allowed = {d or "ai.onnx" for d in policy.file.allowed_domains}
        used: dict[str, list[str]] = event["domains"]
        imported = set(event["opsets"])
        bad = {d: ops for d, ops in used.items() if d not in allowed}
        bad_imports = sorted(imported - allowed)
        if bad or bad_imports:
            parts = [f"domain {d!r} (ops {', '.join(ops[:5])})" for d, ops in sorted(bad.items())]
            parts += [f"opset import {d!r}" for d in bad_imports if d not in bad]
            return outcome(
                self,
                "fail",
                "not allowed: " + "; ".join(parts) + " — custom operators cannot be "
                "served; re-export with standard operators",
                value=sorted(set(bad) | set(bad_imports)),
                limit=sorted(allowed),
            )
        return outcome(self, "pass", value=sorted(used), limit=sorted(allowed))
