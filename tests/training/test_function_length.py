"""The training core keeps its functions short (STYLE.md: under ~60 lines), checked on the source's AST."""

from __future__ import annotations

import ast
from pathlib import Path

import training

MAX_LINES = 60


def test_no_function_in_training_is_longer_than_60_lines() -> None:
    root = Path(training.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 20  # the whole package was scanned
    long = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == [], "split these functions: " + "; ".join(long)
