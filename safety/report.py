"""The gate report for people (a table) and for CI dashboards (JUnit XML)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from cascade_registry.artifacts import GateReport

__all__ = ["format_table", "junit_xml", "write_junit"]

_MARK = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "skip"}


def _short(value: Any, width: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v, width)}" for k, v in value.items())
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(report: GateReport, message_width: int = 100) -> str:
    """One row per check: status, measured value, limit, seconds, message; then the verdict."""
    rows = [("check", "status", "value", "limit", "sec", "message")]
    for c in report.checks:
        rows.append(
            (
                c.name,
                _MARK[c.status],
                _short(c.value, 44),
                _short(c.limit, 44),
                f"{c.seconds:.2f}",
                _short(c.message, message_width) if c.message else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows
    ]
    lines.insert(1, "-" * min(160, sum(widths) + 10 + 7))
    counts = {s: sum(c.status == s for c in report.checks) for s in ("pass", "fail", "error", "skip")}
    total = sum(c.seconds for c in report.checks)
    ref = str(report.ref) if report.ref else "<unreadable card>"
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append("")
    lines.append(
        f"{ref}  model.onnx sha256 {report.onnx_sha256[:16] or '-'}  {verdict}  "
        f"({counts['pass']} pass, {counts['fail']} fail, {counts['error']} error, {counts['skip']} skip; "
        f"{total:.1f} s)"
    )
    return "\n".join(lines)


def junit_xml(report: GateReport) -> str:
    """JUnit XML: one testsuite 'lockgate check', one testcase per check."""
    suite = ET.Element(
        "testsuite",
        name="lockgate check",
        tests=str(len(report.checks)),
        failures=str(sum(c.status == "fail" for c in report.checks)),
        errors=str(sum(c.status == "error" for c in report.checks)),
        skipped=str(sum(c.status == "skip" for c in report.checks)),
        time=f"{sum(c.seconds for c in report.checks):.3f}",
        timestamp=report.created_at.isoformat(),
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="model", value=str(report.ref) if report.ref else "")
    ET.SubElement(props, "property", name="onnx_sha256", value=report.onnx_sha256)
    classname = f"lockgate.gate.{report.ref.name}" if report.ref else "lockgate.gate"
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", classname=classname, name=c.name, time=f"{c.seconds:.3f}")
        detail = f"value: {json.dumps(c.value, default=str)}\nlimit: {json.dumps(c.limit, default=str)}"
        if c.status in {"fail", "error"}:
            el = ET.SubElement(case, "failure" if c.status == "fail" else "error", message=c.message[:500])
            el.text = f"{c.message}\n{detail}"
        elif c.status == "skip":
            ET.SubElement(case, "skipped", message=c.message[:500])
        else:
            ET.SubElement(case, "system-out").text = f"{c.message}\n{detail}".strip()
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(report: GateReport, path: Path | str) -> None:
    """Write :func:`junit_xml` atomically (temp file + rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(junit_xml(report))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
