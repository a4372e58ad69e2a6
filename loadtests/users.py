"""Locust user classes built from a :class:`~loadtests.plan.TrafficPlan`: one class per consumer.

Importing this module imports Locust (and so gevent's monkey-patching): only the load runner does.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

from locust import FastHttpUser, between, constant, task

from loadtests.answers import judge_answer
from loadtests.measurements import OutcomeCount
from loadtests.plan import REQUEST_NAMES, ConsumerTraffic, Payload, PayloadPool, TrafficPlan

__all__ = ["Ledger", "build_user_classes"]

PREDICT_PATH = "/predict"


class Ledger:
    """Counts every request by (consumer, model, kind, status, expected): what Locust sent."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str, int, bool]] = Counter()

    def record(self, consumer: str, model: str, kind: str, status: int, expected: bool) -> None:
        self.counts[(consumer, model, kind, status, expected)] += 1

    def clear(self) -> None:
        self.counts.clear()

    def outcomes(self) -> list[OutcomeCount]:
        return [
            OutcomeCount(consumer=c, model=m, kind=k, status=s, expected=e, count=n)
            for (c, m, k, s, e), n in sorted(self.counts.items())
        ]


class _GatewayUser(FastHttpUser):
    """Sends one request per task: valid most of the time, a must-be-refused one at ``refused_share``."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0
    plan: TrafficPlan
    pool: PayloadPool
    consumer: ConsumerTraffic
    ledger: Ledger
    _ids = itertools.count()

    def on_start(self) -> None:
        self.rng = random.Random(f"{self.plan.seed}:{self.consumer.name}:{next(self._ids)}")

    def _send(self, kind: str, consumer: str, key: str | None, model: str, payload: Payload) -> None:
        headers = {"Content-Type": payload.content_type, "Accept": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        with self.client.post(
            PREDICT_PATH, data=payload.body, headers=headers, name=REQUEST_NAMES[kind], catch_response=True
        ) as resp:
            status = int(resp.status_code or 0)
            problem = judge_answer(kind, status, resp.content, self.plan.models[model], payload.rows)
            self.ledger.record(consumer, model, kind, status, problem is None)
            if problem is None:
                resp.success()
            else:
                resp.failure(problem)

    @task
    def call(self) -> None:
        rng, plan, me = self.rng, self.plan, self.consumer
        kind = rng.choice(plan.refused_kinds) if rng.random() < plan.refused_share else "valid"
        if kind == "undeclared":
            consumer, model = rng.choice(plan.undeclared)
            key = plan.consumer(consumer).key
            self._send(kind, consumer, key, model, rng.choice(self.pool.valid[model]))
            return
        model = rng.choice(me.models)
        if kind == "malformed":
            self._send(kind, me.name, me.key, model, rng.choice(self.pool.malformed[model]))
        else:
            key = None if kind == "no_key" else me.key
            self._send(kind, "-" if key is None else me.name, key, model, rng.choice(self.pool.valid[model]))


def _class_name(consumer: str) -> str:
    return "Consumer_" + "".join(ch if ch.isalnum() else "_" for ch in consumer)


def build_user_classes(
    plan: TrafficPlan, pool: PayloadPool, ledger: Ledger, think_time: float = 0.0
) -> list[type[FastHttpUser]]:
    """One Locust user class per consumer with traffic weight > 0 and at least one declared model."""
    wait = constant(0.0) if think_time <= 0 else between(0.0, think_time)
    classes: list[type[FastHttpUser]] = []
    for consumer in plan.consumers:
        if consumer.weight <= 0 or not consumer.models:
            continue
        attrs = {
            "abstract": False,
            "weight": consumer.weight,
            "wait_time": wait,
            "plan": plan,
            "pool": pool,
            "consumer": consumer,
            "ledger": ledger,
            "__module__": __name__,
        }
        classes.append(type(_class_name(consumer.name), (_GatewayUser,), attrs))
    return classes
