"""Load tests of the lockgate gateway: Locust traffic built from the registry, judged by SLOs.

Black-box HTTP only (may read ``cascade_registry`` to build users; never training/safety/serving).
This package root imports no Locust: ``loadtests.runner``/``users``/``capacity``/``orchestrator``
do, and Locust monkey-patches the standard library with gevent, so only the ``lockgate loadtest``
process imports them. The models below (pydantic) are loaded on first use, so ``lockgate loadtest
--help`` imports no pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loadtests.errors import GatewayError, LoadtestError, PlanError, PrometheusError, SloFileError

if TYPE_CHECKING:  # pragma: no cover
    from loadtests.measurements import EndpointStats as EndpointStats
    from loadtests.measurements import Measurements as Measurements
    from loadtests.measurements import OutcomeCount as OutcomeCount
    from loadtests.plan import REQUEST_NAMES as REQUEST_NAMES
    from loadtests.plan import ConsumerTraffic as ConsumerTraffic
    from loadtests.plan import ModelTarget as ModelTarget
    from loadtests.plan import TrafficPlan as TrafficPlan
    from loadtests.slo import Objective as Objective
    from loadtests.slo import SloFile as SloFile
    from loadtests.slo import Verdict as Verdict
    from loadtests.slo import evaluate as evaluate
    from loadtests.slo import load_slo as load_slo
    from loadtests.slo import parse_slo as parse_slo

_LAZY = {
    **dict.fromkeys(("EndpointStats", "Measurements", "OutcomeCount"), "measurements"),
    **dict.fromkeys(("REQUEST_NAMES", "ConsumerTraffic", "ModelTarget", "TrafficPlan"), "plan"),
    **dict.fromkeys(("Objective", "SloFile", "Verdict", "evaluate", "load_slo", "parse_slo"), "slo"),
}

__all__ = [
    "REQUEST_NAMES",
    "ConsumerTraffic",
    "EndpointStats",
    "GatewayError",
    "LoadtestError",
    "Measurements",
    "ModelTarget",
    "Objective",
    "OutcomeCount",
    "PlanError",
    "PrometheusError",
    "SloFile",
    "SloFileError",
    "TrafficPlan",
    "Verdict",
    "evaluate",
    "load_slo",
    "parse_slo",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loadtests' has no attribute {name!r}")
    return getattr(importlib.import_module(f"loadtests.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
