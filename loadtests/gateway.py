"""Talking to the gateway outside of the load: readiness and a preflight call per consumer.

The preflight catches a wrong key, an undeclared model or a gateway that has not yet picked up a new
key (it polls the registry) before any load is sent, so a misconfiguration is one readable error
instead of a run full of failures. Plain ``urllib``: works with or without gevent's patching.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from loadtests.errors import GatewayError
from loadtests.measurements import OutcomeCount
from loadtests.plan import PayloadPool, TrafficPlan

__all__ = ["is_ready", "post_predict", "preflight", "wait_ready"]


def is_ready(host: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{host}/readyz", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def wait_ready(host: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_ready(host):
        if time.monotonic() > deadline:
            raise GatewayError(
                f"the gateway at {host} is not ready (GET /readyz) after {timeout:.0f} s",
                "start it with 'lockgate serve' or pass the right --host",
            )
        time.sleep(0.25)


def post_predict(host: str, key: str | None, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(f"{host}/predict", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError) as e:
        raise GatewayError(
            f"POST {host}/predict failed: {e}", "check --host and that the gateway is up"
        ) from None


def _reason(content: bytes) -> str:
    try:
        err = json.loads(content)["error"]
        return f"{err.get('message', '')} {err.get('fix', '')}".strip()
    except (ValueError, KeyError, TypeError):
        return content[:200].decode(errors="replace")


def preflight(plan: TrafficPlan, pool: PayloadPool, host: str, timeout: float = 15.0) -> list[OutcomeCount]:
    """One valid request per (consumer, model) must get 200 within ``timeout``; returns what was sent."""
    sent: list[OutcomeCount] = []
    for consumer in plan.consumers:
        for model in consumer.models:
            payload = min(pool.valid[model], key=lambda p: p.rows)
            deadline = time.monotonic() + timeout
            while True:
                status, content = post_predict(host, consumer.key, payload.body)
                sent.append(
                    OutcomeCount(
                        consumer=consumer.name,
                        model=model,
                        kind="valid",
                        status=status,
                        expected=status == 200,
                        count=1,
                    )
                )
                if status == 200:
                    break
                if time.monotonic() > deadline or status not in (401, 403, 503):
                    raise GatewayError(
                        f"preflight: consumer {consumer.name!r} calling model {model!r} got HTTP {status}: "
                        f"{_reason(content)}",
                        "check the consumer's key and declaration (lockgate registry ...)",
                    )
                time.sleep(0.5)
    return sent
