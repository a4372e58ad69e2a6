"""Bad and unexpected inputs (issue check 4).

Every case must either get a valid answer from the model, or be one the card's input policy declares
rejected at the serving edge (then the model never sees it and the case is not run). A crash, a hang or
invalid probabilities on an input that reaches the model fails the check. Inputs of the wrong width are
rejected at the edge by ``card.features`` too, but they are still run: the model must refuse them cleanly
or answer validly, never crash or hang. So are empty batches (a request carries 1 to
``input_policy.max_batch_rows`` rows). Images and token sequences (``card.inputs``) add their own cases
(:mod:`safety.checks.kind_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascade_registry.artifacts import CheckResult
from safety.checks.base import outcome
from safety.checks.kind_inputs import kind_cases
from safety.checks.runtime import case_failure
from safety.checks.table_inputs import table_cases
from safety.checks.validity import answer_problem
from safety.context import GateContext
from safety.policy import GatePolicy
from safety.sandbox import SandboxCase, SandboxRun

__all__ = ["BadInputsCheck", "InputCase", "build_cases"]

ROWS = 8
MAX_RESTARTS = 3


@dataclass(frozen=True)
class InputCase:
    id: str
    array: np.ndarray  # what reaches the model (after the edge's casts)
    rejected_by: str | None = None  # the card field that makes the serving edge refuse this input
    probe: bool = False  # rejected at the edge, but run anyway: only a crash or a hang fails
    categorical: np.ndarray | None = None  # the 'categorical' batch; None = valid strings from the card


def build_cases(ctx: GateContext, policy: GatePolicy) -> list[InputCase]:
    card = ctx.card
    ip = card.input_policy
    dtype = ctx.input_dtype()
    numeric = card.numeric_features
    n_features = len(numeric)
    if n_features == 0:
        return table_cases(ctx, ROWS, InputCase)
    base = ctx.valid_rows(ROWS, seed=3).astype(np.float64)
    base = np.where(np.isnan(base), np.array([f.impute_value or 0.0 for f in numeric])[None, :], base)
    lo = np.array([f.min or 0.0 for f in numeric], dtype=np.float64)
    hi = np.array([f.max or 0.0 for f in numeric], dtype=np.float64)
    span = policy.inputs.far_out_of_range_factor * (hi - lo + 1.0)
    nonfinite = "input_policy.reject_nonfinite" if ip.reject_nonfinite else None
    imputed = np.array([f.missing != "error" for f in numeric], dtype=bool)

    def poke(value: float) -> np.ndarray:
        x = base.copy()
        x[np.arange(ROWS), np.arange(ROWS) % n_features] = value
        x[-1, :] = value  # and one row made only of it
        return x

    def edge(x: np.ndarray) -> str | None:
        """The input-policy field rejecting ``x`` at the edge, if any (judged in float64, before the cast)."""
        finite = np.isfinite(x) | (np.isnan(x) & imputed[None, :])  # NaN = missing where the graph imputes
        if nonfinite and not finite.all():
            return nonfinite
        if np.abs(np.where(finite, x, 0)).max(initial=0) > ip.max_abs_value:
            return "input_policy.max_abs_value"
        return None

    raw: list[tuple[str, np.ndarray]] = [
        ("nan", poke(np.nan)),
        ("+inf", poke(np.inf)),
        ("-inf", poke(-np.inf)),
        ("+1e38", poke(1e38)),
        ("-1e38", poke(-1e38)),
        ("zeros", np.zeros((ROWS, n_features))),
        ("repeated_rows", np.tile(base[:1], (16, 1))),
        ("constant_rows", np.repeat([[-1.0], [1.0], [10.0], [1000.0]], n_features, axis=1)),
        ("far_above_range", np.tile(hi + span, (ROWS, 1))),
        ("far_below_range", np.tile(lo - span, (ROWS, 1))),
        ("batch_of_1", base[:1]),
        ("max_batch", ctx.valid_rows(ctx.max_batch_rows(), seed=4).astype(np.float64)),
    ]
    cases = [InputCase(name, x.astype(dtype), edge(x)) for name, x in raw]
    precise = base + 1e-9
    cases.append(
        InputCase(
            "float64",
            precise.astype(dtype),
            None if ip.accepts_float64 else "input_policy.accepts_float64 = false",
        )
    )
    cases.append(
        InputCase(
            "integers",
            np.rint(base).astype(np.int64).astype(dtype),
            None if ip.accepts_integers else "input_policy.accepts_integers = false",
        )
    )
    cases.append(
        InputCase(
            "empty_batch",
            np.zeros((0, n_features), dtype=dtype),
            "the serving edge (1 to input_policy.max_batch_rows rows)",
            probe=True,
        )
    )
    width = f"card.features ({n_features} columns)"
    if n_features > 1:
        cases.append(InputCase("too_few_features", base[:, :-1].astype(dtype), width, probe=True))
    cases.append(
        InputCase("too_many_features", np.hstack([base, base[:, :1]]).astype(dtype), width, probe=True)
    )
    return cases + kind_cases(card, base, dtype, InputCase) + table_cases(ctx, ROWS, InputCase)


class BadInputsCheck:
    name = "inputs"
    requires = ("contract",)
    description = (
        "NaN, ±inf, ±1e38, zeros, constant and repeated rows, far out of range, empty/1/max batch, float64, "
        "integers, wrong width: a valid answer or declared rejected at the edge"
    )

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        cases = build_cases(ctx, policy)
        n_classes = len(ctx.card.classes)
        to_run = [c for c in cases if c.rejected_by is None or c.probe]
        verdicts: dict[str, str] = {
            c.id: f"rejected at the edge by {c.rejected_by}" for c in cases if c.rejected_by and not c.probe
        }
        failures: list[str] = []
        pending = to_run
        for _ in range(MAX_RESTARTS + 1):
            if not pending:
                break
            run = ctx.run_model([SandboxCase(c.id, c.array, categorical=c.categorical) for c in pending])
            done_ids = set()
            for case in pending:
                if run.case(case.id) is None and run.first("load_error") is None:
                    break  # the worker died on (or before) this case
                done_ids.add(case.id)
                self._judge(case, run, n_classes, policy, verdicts, failures)
            rest = [c for c in pending if c.id not in done_ids]
            if not rest:
                break
            culprit = run.running or rest[0].id
            verdicts[culprit] = f"crashed the runtime: {run.death()}"
            failures.append(f"{culprit}: {run.death()}")
            pending = [c for c in rest if c.id != culprit]
            if run.killed_by == "timeout" or ctx.remaining() < 1:
                for c in pending:
                    verdicts[c.id] = "not run (an earlier case hung the worker)"
                failures.append(f"{len(pending)} case(s) not run after the hang")
                break
        value = {
            "cases": len(cases),
            "failed": len(failures),
            "rejected_at_edge": sum(v.startswith("rejected") for v in verdicts.values()),
        }
        if failures:
            more = f" (+{len(failures) - 4} more)" if len(failures) > 4 else ""
            return outcome(self, "fail", "; ".join(failures[:4]) + more, value=value, limit={"failed": 0})
        edge = sorted(k for k, v in verdicts.items() if v.startswith("rejected at the edge"))
        probed = sorted(c.id for c in cases if c.probe)
        return outcome(
            self,
            "pass",
            value=value,
            limit={"failed": 0},
            message=f"valid answers or clean refusals; rejected at the edge: {', '.join(edge) or 'none'}; "
            f"refused at the edge but run anyway: {', '.join(probed) or 'none'}",
        )

    @staticmethod
    def _judge(
        case: InputCase,
        run: SandboxRun,
        n_classes: int,
        policy: GatePolicy,
        verdicts: dict[str, str],
        failures: list[str],
    ) -> None:
        failure = case_failure(run, case.id)
        clean = failure is None or failure.startswith(("inference raised", "session creation"))
        if case.probe and clean:
            verdicts[case.id] = "refused by the model" if failure else "answered (the edge rejects it)"
            return
        if failure:
            verdicts[case.id] = failure
            failures.append(f"{case.id}: {failure}")
            return
        why = answer_problem(
            run.outputs[case.id],
            len(case.array),
            n_classes,
            policy.inputs.probability_tolerance,
            policy.inputs.row_sum_tolerance,
        )
        if why and not case.probe:
            verdicts[case.id] = f"invalid answer: {why}"
            failures.append(f"{case.id}: {why} and card.input_policy does not reject it at the edge")
        else:
            verdicts[case.id] = "valid answer"
