"""Load tests of the lockgate gateway: Locust traffic built from the registry, judged by SLOs.

Black-box HTTP only (may read ``cascade_registry`` to build users; never training/safety/serving).
This package root imports no Locust: ``loadtests.runner``/``users``/``capacity``/``orchestrator``
do, and Locust monkey-patches the standard library with gevent, so only the ``lockgate loadtest``
process imports them.
"""

from loadtests.errors import GatewayError, LoadtestError, PlanError, PrometheusError, SloFileError
from loadtests.measurements import EndpointStats, Measurements, OutcomeCount
from loadtests.plan import REQUEST_NAMES, ConsumerTraffic, ModelTarget, TrafficPlan
from loadtests.slo import Objective, SloFile, Verdict, evaluate, load_slo, parse_slo

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
