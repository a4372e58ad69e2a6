"""Drive a short LoadSession against the tiny server (run in a subprocess: Locust monkey-patches).

Usage: python tiny_run.py HOST REPORT_DIR OUT_JSON
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from loadtests.plan import ConsumerTraffic, ModelTarget, TrafficPlan, build_pool  # noqa: E402
from loadtests.runner import LoadSession, SessionOptions  # noqa: E402

host, report_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
plan = TrafficPlan(
    models={
        "tiny": ModelTarget(
            name="tiny",
            features=["a", "b", "c"],
            classes=["no", "yes"],
            max_batch=8,
            rows=[[0.1 * i, 1.0, -1.0 * i] for i in range(20)],
        )
    },
    consumers=[
        ConsumerTraffic(name="alpha", key="key-alpha", models=["tiny"], weight=1),
        ConsumerTraffic(name="beta", key="key-beta", models=[], weight=0),
    ],
    undeclared=[("beta", "tiny")],
    refused_share=0.3,
    seed=1,
)
with LoadSession(plan, build_pool(plan), SessionOptions(host=host, report_dir=report_dir)) as session:
    session.reset()
    session.start(4, spawn_rate=4)
    session.hold(3.0)
    session.stop()
    measured = session.measure()
out.write_text(measured.model_dump_json(), encoding="utf-8")
print(json.dumps({"requests": measured.endpoints["all"].requests}))
