"""Checks that execute the model in the sandbox: load (2), contract (3), resources (5), determinism (6)."""

from __future__ import annotations

import numpy as np

from cascade_registry.artifacts import CheckResult
from safety.checks.base import outcome
from safety.checks.validity import answer_problem
from safety.context import GateContext
from safety.policy import GatePolicy
from safety.sandbox import SandboxCase, SandboxRun

__all__ = ["ContractCheck", "DeterminismCheck", "LoadCheck", "ResourcesCheck", "case_failure"]

CONTRACT_ROWS = 8
#: the max-batch loop runs at least this long so the CPU clock (tick-granular on some kernels) is meaningful
CPU_SAMPLE_SECONDS = 0.25


def _sig(x: float) -> float:
    """``x`` to 3 significant digits (latencies span 1e-3 .. 1e3 ms)."""
    return float(f"{x:.3g}")


def case_failure(run: SandboxRun, case_id: str) -> str | None:
    """Why ``case_id`` produced no outputs (load error, exception, crash, hang), or None."""
    load_error = run.first("load_error")
    if load_error:
        return f"session creation failed: {load_error['error']}"
    event = run.case(case_id)
    if event is None:
        return run.death() or f"case {case_id!r} was not run"
    if event["event"] == "error":
        return f"inference raised {event['error']}"
    if case_id not in run.outputs:
        return "no outputs were saved"
    return None


class LoadCheck:
    name = "load"
    requires = ("file.external_data", "file.domains")
    description = "an ONNX Runtime session is created in the sandbox within the load time and memory limits"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        # the same session also scores the contract's valid rows (one sandboxed worker fewer per gate);
        # what happens during that case is judged by the contract check, not here
        cases = []
        if ctx.card_or_none is not None:
            cases = [SandboxCase("contract", ctx.valid_rows(CONTRACT_ROWS).astype(np.float32))]
        run = ctx.run_model(cases)
        ctx.prefetched["contract"] = run
        limit = {"seconds": policy.load.max_seconds, "rss_mb": policy.load.max_rss_mb}
        event = run.first("loaded")
        if event is None:
            load_error = run.first("load_error")
            why = f"ONNX Runtime refused the model: {load_error['error']}" if load_error else run.death()
            return outcome(self, "fail", why, value={"rss_mb": round(run.maxrss_mb, 1)}, limit=limit)
        ctx.loaded = event
        rss_mb = int(event.get("maxrss_kb", 0)) / 1024.0 if cases else run.maxrss_mb
        value = {"seconds": round(event["seconds"], 3), "rss_mb": round(rss_mb, 1)}
        problems = []
        if event["seconds"] > policy.load.max_seconds:
            problems.append(f"session creation took {event['seconds']:.2f} s (> load.max_seconds)")
        if rss_mb > policy.load.max_rss_mb:
            problems.append(f"peak RSS {rss_mb:.0f} MB (> load.max_rss_mb)")
        if not run.ended_cleanly and run.running != "contract" and run.case("contract") is None:
            problems.append(run.death())
        if problems:
            return outcome(self, "fail", "; ".join(problems), value=value, limit=limit)
        return outcome(self, "pass", value=value, limit=limit)


class ContractCheck:
    name = "contract"
    requires = ("load", "card.schema")
    description = "input 'input' float32 [N, F] and outputs label [N] / probabilities [N, C] match the card"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        assert ctx.loaded is not None, "load passed"
        n_features, n_classes = ctx.n_features(), len(ctx.card.classes)
        expected = f"input [N, {n_features}] -> label [N], probabilities [N, {n_classes}]"
        problems = _declared_problems(ctx, n_features, n_classes)
        if not problems:
            x = ctx.valid_rows(CONTRACT_ROWS)
            run = ctx.prefetched.get("contract")
            if run is None or x.dtype != np.float32:
                run = ctx.run_model([SandboxCase("contract", x)])
            failure = case_failure(run, "contract")
            if failure:
                problems.append(f"valid rows could not be scored: {failure}")
            else:
                outputs = run.outputs["contract"]
                why = answer_problem(
                    outputs,
                    CONTRACT_ROWS,
                    n_classes,
                    policy.inputs.probability_tolerance,
                    policy.inputs.row_sum_tolerance,
                )
                if why:
                    problems.append(f"on valid rows: {why}")
                elif outputs["label"].dtype != np.int64 or outputs["probabilities"].dtype != np.float32:
                    problems.append(
                        f"label is {outputs['label'].dtype} and probabilities "
                        f"{outputs['probabilities'].dtype}; expected int64 and float32"
                    )
                else:
                    probs = outputs["probabilities"]
                    top2 = np.sort(probs, axis=1)[:, -2:]
                    clear = (top2[:, 1] - top2[:, 0]) > 1e-6
                    if np.any(outputs["label"][clear] != probs.argmax(axis=1)[clear]):
                        problems.append("label is not the index of the highest probability")
        if problems:
            return outcome(self, "fail", "; ".join(problems), limit=expected)
        return outcome(self, "pass", value=expected, limit=expected)


def _declared_problems(ctx: GateContext, n_features: int, n_classes: int) -> list[str]:
    assert ctx.loaded is not None
    problems = []
    inputs, outputs = ctx.loaded["inputs"], {o["name"]: o for o in ctx.loaded["outputs"]}
    numeric = ctx.card.numeric_features
    double = bool(numeric) and all(f.dtype == "float64" for f in numeric)
    want_type = "tensor(double)" if double else "tensor(float)"
    n_cat = len(ctx.card.categorical_features)
    if n_cat:
        problems += _categorical_input_problems(inputs[1:], n_cat)
        inputs = inputs[:1]
    if len(inputs) != 1:
        problems.append(f"the model has {len(inputs)} inputs, expected exactly one named 'input'")
    else:
        inp = inputs[0]
        if inp["name"] != "input":
            problems.append(f"the input is named {inp['name']!r}, expected 'input'")
        if inp["type"] != want_type:
            problems.append(f"the input is {inp['type']}, expected {want_type}")
        shape = inp["shape"]
        if len(shape) != 2:
            problems.append(f"the input has rank {len(shape)}, expected [N, {n_features}]")
        else:
            if shape[1] != n_features:
                got = "a free dimension" if shape[1] is None else shape[1]
                problems.append(f"the input takes {got} features, the card lists {n_features}")
            if shape[0] is not None and shape[0] != -1:
                problems.append(f"the batch dimension is fixed to {shape[0]}; export it as dynamic")
    label, probs = outputs.get("label"), outputs.get("probabilities")
    if label is None or probs is None:
        problems.append(
            f"outputs are {sorted(outputs)}; expected 'label' and 'probabilities' "
            "(skl2onnx: options={'zipmap': False} and rename the outputs)"
        )
    else:
        if label["type"] != "tensor(int64)" or len(label["shape"]) != 1:
            problems.append(
                f"label is {label['type']} rank {len(label['shape'])}, expected tensor(int64) [N]"
            )
        if probs["type"] != "tensor(float)" or len(probs["shape"]) != 2:
            problems.append(
                f"probabilities is {probs['type']} rank {len(probs['shape'])}, expected float [N, C]"
            )
        elif probs["shape"][1] not in (None, n_classes):
            problems.append(
                f"probabilities has {probs['shape'][1]} columns, the card lists {n_classes} classes"
            )
    return problems


def _categorical_input_problems(extra: list[dict], n_cat: int) -> list[str]:
    """A mixed-type card: the second input must be ``categorical`` string [N, n_categorical]."""
    if len(extra) != 1 or extra[0]["name"] != "categorical":
        return [f"the card has {n_cat} categorical columns; expected a second input 'categorical', got "
                f"{[e['name'] for e in extra]}"]
    inp = extra[0]
    problems = []
    if inp["type"] != "tensor(string)":
        problems.append(f"'categorical' is {inp['type']}, expected tensor(string)")
    if len(inp["shape"]) != 2 or inp["shape"][1] != n_cat:
        problems.append(f"'categorical' has shape {inp['shape']}, expected [N, {n_cat}]")
    return problems


class ResourcesCheck:
    name = "resources"
    requires = ("contract",)
    description = "p50/p99 latency at batch 1 and the maximum batch, peak RSS and CPU time per row"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        rp = policy.resources
        max_rows = ctx.max_batch_rows()
        declared = ctx.card.input_policy.max_batch_rows
        cases = [
            SandboxCase("batch1", ctx.valid_rows(1), repeat=rp.batch1_repeats + 1, save=False),
            SandboxCase(
                "max_batch",
                ctx.valid_rows(max_rows, seed=1),
                repeat=rp.max_batch_repeats + 1,
                save=False,
                min_seconds=CPU_SAMPLE_SECONDS,
            ),
        ]
        run = ctx.run_model(cases)
        limit = {
            "p50_ms_batch1": rp.p50_ms_batch1,
            "p99_ms_batch1": rp.p99_ms_batch1,
            "p50_ms_max_batch": rp.p50_ms_max_batch,
            "p99_ms_max_batch": rp.p99_ms_max_batch,
            "rss_mb": rp.max_rss_mb,
            "cpu_ms_per_row": rp.cpu_ms_per_row,
        }
        value: dict[str, float] = {"rss_mb": round(run.maxrss_mb, 1)}
        problems = []
        for case in cases:
            event = run.case(case.id)
            if event is None or event["event"] != "done":
                problems.append(f"{case.id}: {case_failure(run, case.id)}")
                continue
            times_ms = np.asarray(event["times"][1:]) * 1000  # the first run warms up
            value[f"p50_ms_{case.id}"] = _sig(float(np.percentile(times_ms, 50)))
            value[f"p99_ms_{case.id}"] = _sig(float(np.percentile(times_ms, 99)))
            if case.id == "max_batch":
                value["cpu_ms_per_row"] = _sig(event["cpu_seconds"] * 1000 / (max_rows * len(event["times"])))
        for key, bound in limit.items():
            if key in value and value[key] > bound:
                problems.append(f"{key} {value[key]:g} > {bound:g}")
        if declared > max_rows:
            problems.append(
                f"the card allows batches of {declared} rows; the gate measured {max_rows} "
                f"(resources.max_batch_rows_limit): lower card.input_policy.max_batch_rows"
            )
        if problems:
            return outcome(
                self,
                "fail",
                "; ".join(problems) + f" (max batch = {max_rows} rows, card.input_policy.max_batch_rows)",
                value=value,
                limit=limit,
            )
        return outcome(self, "pass", value=value, limit=limit, message=f"max batch = {max_rows} rows")


class DeterminismCheck:
    name = "determinism"
    requires = ("contract",)
    description = "the same input gives identical outputs twice in one session and in a fresh session"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        x = ctx.valid_rows(policy.determinism.rows, seed=2)
        first = ctx.run_model([SandboxCase("a", x), SandboxCase("b", x)])
        second = None
        if ctx.reference_or_none() is not None:  # the fresh session is the one parity and quality use
            second = ctx.reference_run(extra=[SandboxCase("c", x)])
        if second is None:
            second = ctx.run_model([SandboxCase("c", x)])
        runs = {"a": first, "b": first, "c": second}
        for case_id, run in runs.items():
            failure = case_failure(run, case_id)
            if failure:
                return outcome(self, "fail", f"run {case_id}: {failure}")
        worst = 0.0
        differs = []
        for other in ("b", "c"):
            for name, a in first.outputs["a"].items():
                b = runs[other].outputs[other].get(name)
                if b is None or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                    differs.append(f"{name} ({'same session' if other == 'b' else 'fresh session'})")
                    if b is not None and a.shape == b.shape and np.issubdtype(a.dtype, np.number):
                        worst = max(
                            worst, float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                        )
        if differs:
            return outcome(
                self,
                "fail",
                f"outputs differ on the same {len(x)} rows: {', '.join(differs)}",
                value=worst,
                limit=0.0,
            )
        return outcome(self, "pass", value=0.0, limit=0.0, message=f"{len(x)} rows, 3 runs, bit-identical")
