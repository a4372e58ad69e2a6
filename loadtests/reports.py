"""Report files: every file the load test writes goes through temp + rename (no half-written reports)."""

from __future__ import annotations

from cascade_registry.artifacts import write_json_atomic, write_text_atomic

__all__ = ["write_json_atomic", "write_text_atomic"]
