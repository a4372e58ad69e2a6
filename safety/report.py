"""The gate report for people (a table) and for CI dashboards (JUnit XML)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from cascade_registry.artifacts import GateReport, published_mode

__all__ = ["format_table", "junit_xml", "write_junit"]

_MARK = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "skip"}
_OPERATORS = ("<=", ">=", "==", "<", ">", "=")
_HEADERS = ("check", "status", "measured", "limit", "sec")
_NUMBER = re.compile(r"^[-+]?[\d.]+(e[-+]?\d+)?\S*$|^[0-9a-f]{8,}$")
_MIN_MESSAGE = 24  # narrower than this, the message goes on its own lines below the check
_NBSP = "\u00a0"  # binds "<=" to its number and a number to its unit while wrapping


def _unit(check: str, key: str | None) -> str:
    """The unit of a measured value, from the check and key names (sizes are MB, times s or ms)."""
    name = (key or check).lower()
    if check == "file.size" and key is None or name.endswith("_mb"):
        return "MB"
    if "_ms" in name:
        return "ms"
    if name in {"seconds", "wall_seconds"} or name.endswith("_seconds"):
        return "s"
    return ""


def _number(value: float | int, unit: str) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text}{_NBSP}{unit}" if unit else text


def _value(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return _number(value, unit)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(_value(v, "") for v in value) or "(none)"
    return json.dumps(value, default=str)


def _limit(limit: Any, unit: str, value: Any) -> str:
    """``>= 0.6``, ``<= 200 MB``, ``in [9, 23]``: numbers alone are ceilings (every policy maximum)."""
    if limit is None:
        return "-"
    if isinstance(limit, bool):
        return f"={_NBSP}{str(limit).lower()}"
    if isinstance(limit, int | float):
        return f"<={_NBSP}{_number(limit, unit)}"
    if isinstance(limit, str):
        if limit.startswith(_OPERATORS):
            op, _, rest = limit.partition(" ")
            return f"{op}{_NBSP}{rest}{_NBSP}{unit}" if unit else f"{op}{_NBSP}{rest}"
        return "same as measured" if limit == value else f"={_NBSP}{limit}"
    if isinstance(limit, list) and len(limit) == 2 and all(isinstance(v, int | float) for v in limit):
        return f"in [{_number(limit[0], '')}, {_number(limit[1], unit)}]"
    if isinstance(limit, list):
        return "within " + (", ".join(str(v) for v in limit) or "(none)")
    return json.dumps(limit, default=str)


def _pairs(check: str, value: Any, limit: Any) -> list[tuple[str, str, str]]:
    """(measure, value, limit) lines: one per key when value or limit is a mapping."""
    if not isinstance(value, dict) and not isinstance(limit, dict):
        unit = _unit(check, None)
        return [("", _value(value, unit), _limit(limit, unit, value))]
    values = value if isinstance(value, dict) else {}
    limits = limit if isinstance(limit, dict) else {}
    keys = list(values) + [k for k in limits if k not in values]
    lines = []
    for key in keys:
        unit = _unit(check, key)
        limit_text = _limit(limits[key], unit, values.get(key)) if key in limits else "-"
        lines.append((key, _value(values.get(key), unit) if key in values else "-", limit_text))
    return lines


def _split_word(word: str, width: int) -> list[str]:
    """A word longer than ``width``: numbers and digests stay whole; names break after '.', '_' or ','."""
    if len(word) <= width or _NUMBER.match(word.replace(_NBSP, "")):
        return [word]
    parts = re.findall(r"[^._,]+[._,]?", word)
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return [*lines, line]


def _wrap(text: str, width: int) -> list[str]:
    """Wrap at spaces, then inside long names; never inside a number."""
    if len(text) <= width:
        return [text]
    words = [piece for word in text.split(" ") for piece in _split_word(word, width)]
    return textwrap.wrap(" ".join(words), width, break_long_words=False, break_on_hyphens=False) or [""]


def _rows(report: GateReport, caps: tuple[int, int]) -> list[tuple[list[str], str]]:
    """Per check: its table lines (measured/limit wrapped at ``caps``) and its message."""
    out = []
    for c in report.checks:
        cells: list[list[str]] = []
        for key, value, limit in _pairs(c.name, c.value, c.limit):
            vs, ls = _wrap(f"{key} {value}" if key else value, caps[0]), _wrap(limit, caps[1])
            for i in range(max(len(vs), len(ls))):
                first = not cells
                cells.append(
                    [
                        c.name if first else "",
                        _MARK[c.status] if first else "",
                        vs[i] if i < len(vs) else "",
                        ls[i] if i < len(ls) else "",
                        f"{c.seconds:.2f}" if first else "",
                    ]
                )
        out.append((cells, c.message or ""))
    return out


def format_table(report: GateReport, width: int | None = None) -> str:
    """One row per check (one line per measure of a multi-part check): status, measured value with its
    unit, limit (``<= 200 MB``, ``>= 0.6``), seconds and the message; then the verdict. Fits ``width``
    columns (default: the terminal's, 100 when not a terminal); values are wrapped, never cut."""
    width = max(width or shutil.get_terminal_size((100, 24)).columns, 60)
    fixed = max([len(c.name) for c in report.checks] + [5]) + len("status") + len("sec ") + 2 * len(_HEADERS)
    room = max(24, width - fixed)  # measured and limit columns share what the others leave, 3:2
    rows = _rows(report, (room * 3 // 5, room - room * 3 // 5))
    lines_of = [[list(_HEADERS)]] + [cells for cells, _ in rows]
    widths = [max(len(line[i]) for cells in lines_of for line in cells) for i in range(len(_HEADERS))]
    table_width = sum(widths) + 2 * len(widths)
    message_width = width - table_width
    inline = message_width >= _MIN_MESSAGE

    def join(cells: list[str], message: str = "") -> str:
        text = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + message
        return text.replace(_NBSP, " ").rstrip()

    lines = [join(list(_HEADERS), "message" if inline else ""), "-" * min(width, table_width + 7)]
    for cells, message in rows:
        wrapped = _wrap(message, message_width if inline else width - 4) if message else []
        for line in cells:
            lines.append(join(line, wrapped.pop(0) if inline and wrapped else ""))
        pad = " " * (table_width if inline else 4)
        lines += [(pad + m).rstrip() for m in wrapped]
    counts = {s: sum(c.status == s for c in report.checks) for s in ("pass", "fail", "error", "skip")}
    total = sum(c.seconds for c in report.checks)
    ref = str(report.ref) if report.ref else "<unreadable card>"
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append("")
    lines.append(
        f"{ref}  sha256 {report.onnx_sha256[:12] or '-'}  {verdict}  "
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
        os.fchmod(fd, published_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(junit_xml(report))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
