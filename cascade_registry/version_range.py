"""Version ranges on declarations: ``"2"``, ``"==2"``, ``">=2,<5"``, ``"!=3"``, ``"*"`` (any).

Clauses are separated by commas and must all hold (as in PEP 440 specifiers, on integer versions).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

from cascade_registry.errors import InvalidInputError

__all__ = ["VersionRange"]

_CLAUSE = re.compile(r"^(==|!=|>=|<=|>|<)?\s*([1-9][0-9]{0,8})$")
_OPS: dict[str, Callable[[int, int], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


class VersionRange:
    """A parsed range; ``str()`` is its normalized text."""

    def __init__(self, clauses: tuple[tuple[str, int], ...]) -> None:
        self.clauses = clauses

    @classmethod
    def parse(cls, text: str | None) -> VersionRange:
        if text is None or text.strip() in {"", "*"}:
            return cls(())
        clauses = []
        for part in text.split(","):
            m = _CLAUSE.match(part.strip())
            if not m:
                raise InvalidInputError(
                    f"version range {text!r} is malformed at {part.strip()!r}",
                    "use e.g. '3', '>=2', '>=2,<5' or '*' (comma = and)",
                )
            clauses.append((m.group(1) or "==", int(m.group(2))))
        return cls(tuple(clauses))

    @classmethod
    def normalize(cls, text: str | None) -> str | None:
        """The canonical text of a range, or None for 'any version'."""
        parsed = cls.parse(text)
        return str(parsed) if parsed.clauses else None

    def contains(self, version: int) -> bool:
        return all(_OPS[op](version, bound) for op, bound in self.clauses)

    def __str__(self) -> str:
        return ",".join(f"{op}{bound}" for op, bound in self.clauses) or "*"
