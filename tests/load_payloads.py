"""What a load test sends, sent once to a real gateway and judged as the load test judges it."""

from __future__ import annotations

import httpx

from loadtests.answers import judge_answer
from loadtests.plan import ConsumerTraffic, ModelTarget, TrafficPlan, build_pool


def send_load_payloads(url: str, key: str, target: ModelTarget) -> list[str]:
    """Every payload a load test would send for ``target`` (a few valid sizes, all malformed ones), each
    judged as the load test judges it: the problems found (none = the load test can run this model)."""
    pool = build_pool(TrafficPlan(models={target.name: target}, consumers=[
        ConsumerTraffic(name="load", key=key, models=[target.name])]), bodies_per_model=4)
    problems = []
    for kind, payloads in (("valid", pool.valid[target.name]), ("malformed", pool.malformed[target.name])):
        for p in payloads:
            r = httpx.post(url + "/predict", content=p.body, timeout=30, headers={
                "Authorization": f"Bearer {key}", "Content-Type": p.content_type})
            problems.append(judge_answer(kind, r.status_code, r.content, target, p.rows))
    return [p for p in problems if p]

