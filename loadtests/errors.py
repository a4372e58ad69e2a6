"""Exceptions of the load-test package.

All derive from :class:`LoadtestError`; ``str()`` says what was wrong and how to fix it::

    LoadtestError
    ├── SloFileError          the SLO file is missing, not TOML, or does not match the schema
    ├── PlanError             no traffic can be built (no consumer, no key, no model, unreadable inputs)
    ├── GatewayError          the gateway cannot be reached or answers garbage
    └── PrometheusError       the Prometheus binary is missing, does not start, or a query failed
"""

from __future__ import annotations


class LoadtestError(Exception):
    """Base of load-test problems. Built from a problem and, optionally, how to fix it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} ({fix})" if fix else problem)


class SloFileError(LoadtestError):
    """The SLO file cannot be used."""


class PlanError(LoadtestError):
    """No sensible traffic can be built."""


class GatewayError(LoadtestError):
    """The gateway is unreachable or answers something unexpected outside of the load itself."""


class PrometheusError(LoadtestError):
    """The Prometheus server cannot be started or queried."""
