"""Durations on the command line, one syntax for every subcommand: ``90`` (seconds), ``500ms``, ``3s``,
``2m``, ``1h30m``, ``30d``. Stdlib only (it sits at the bottom of the import graph so that ``training``,
``safety``, ``serving`` and ``loadtests`` can all use it)."""

from __future__ import annotations

import argparse
import re

__all__ = ["DURATION_HELP", "duration_option", "parse_duration"]

DURATION_HELP = "a duration: 90 (seconds), 500ms, 3s, 2m, 1h30m, 30d"
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)?")
_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}


def parse_duration(value: str | float | int) -> float:
    """``'90'``, ``'500ms'``, ``'30s'``, ``'5m'``, ``'1h30m'``, ``'30d'`` -> seconds; ``ValueError`` says
    the format.

    Units go from large to small, each once; a bare number is seconds and may only stand alone or come
    last (``1m30``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    parts = list(_PART.finditer(text))
    covered = "".join(m.group(0) for m in parts)
    seconds = [_SECONDS[m.group(2)] for m in parts]
    descending = all(a > b for a, b in zip(seconds, seconds[1:], strict=False))
    if not text or covered != text or not descending or any(m.group(2) is None for m in parts[:-1]):
        raise ValueError(f"duration {value!r} is not like 90, 30s, 500ms, 2m, 1h30m or 30d")
    return sum(float(m.group(1)) * _SECONDS[m.group(2)] for m in parts)


def duration_option(text: str) -> float:
    """An argparse ``type=``: a duration in seconds, or a one-line usage error."""
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
