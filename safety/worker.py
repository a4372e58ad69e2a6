"""The sandboxed worker: the only code of the gate that parses or executes a model.

Run as ``python -I safety/worker.py JOB.json EVENTS.jsonl MEMORY_MB CPU_SECONDS``. It sets its own
resource limits *before* importing numpy, onnx or onnxruntime, so whatever the model does (allocate tens
of GB, loop for hours, crash the runtime) stays inside this process. It imports nothing from lockgate:
only the standard library, numpy, onnx and onnxruntime.

Jobs (JSON):

- ``{"op": "inspect", "model": PATH, "checker": "none" | "auto" | "proto" | "path"}``: parse the protobuf
  without loading external data, report opsets, operator domains (sub-graphs included) and external-data
  references, then run ``onnx.checker`` (full check) as asked ("auto": only when there is no external
  data, which the parent must judge before anything opens it).
- ``{"op": "run", "model": PATH, "threads": N, "outdir": DIR,
  "cases": [{"id", "file", "repeat", "min_seconds", "save"}]}``: create an ONNX Runtime session, then run
  each case's ``.npy`` input ``repeat`` times and at least ``min_seconds`` (CPU clocks can be tick-coarse).

Events are JSON lines appended (and flushed) to EVENTS, so the parent knows how far the worker got even
when the kernel kills it: ``inspected``, ``loaded``, ``start``, ``done``, ``error``, ``end``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

_events: Any = None


def _emit(event: str, **fields: Any) -> None:
    _events.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    _events.flush()


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (mem, mem))


def _peak_rss_kb() -> int:
    """VmHWM of this process image (ru_maxrss would include the parent's RSS from before exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _describe(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return text if len(text) <= 600 else text[:600] + "…"


def _graphs(graph: Any) -> Any:
    """The graph and every sub-graph (If/Loop/Scan bodies), depth first."""
    import onnx

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def _bodies(model: Any) -> Any:
    """(nodes, initializers, sparse initializers) of the main graph, every sub-graph, every local
    function (and the sub-graphs inside functions) and the ``training_info`` graphs."""
    import onnx

    roots = [model.graph]
    for info in model.training_info:
        roots += [info.initialization, info.algorithm]
    for root in roots:
        for graph in _graphs(root):
            yield graph.node, graph.initializer, graph.sparse_initializer
    for function in model.functions:
        yield function.node, [], []
        for node in function.node:
            for attr in node.attribute:
                subgraphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
                for sub in subgraphs:
                    for graph in _graphs(sub):
                        yield graph.node, graph.initializer, graph.sparse_initializer


def _tensors(model: Any) -> Any:
    import onnx

    for nodes, initializers, sparse_initializers in _bodies(model):
        yield from initializers
        for sparse in sparse_initializers:
            yield sparse.values
            yield sparse.indices
        for node in nodes:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == onnx.AttributeProto.TENSORS:
                    yield from attr.tensors
                elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                    yield attr.sparse_tensor.values
                    yield attr.sparse_tensor.indices
                elif attr.type == onnx.AttributeProto.SPARSE_TENSORS:
                    for sparse in attr.sparse_tensors:
                        yield sparse.values
                        yield sparse.indices


def _inspect(job: dict[str, Any]) -> None:
    import onnx

    try:
        model = onnx.load_model(job["model"], load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is a verdict, not a crash
        _emit("inspected", parsed=False, error=_describe(e))
        return
    domains: dict[str, list[str]] = {}
    n_nodes = 0
    for nodes, _, _ in _bodies(model):
        for node in nodes:
            n_nodes += 1
            ops = domains.setdefault(node.domain or "ai.onnx", [])
            if node.op_type not in ops:
                ops.append(node.op_type)
    for function in model.functions:
        domains.setdefault(function.domain or "ai.onnx", []).append(f"function:{function.name}")
    external = []
    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            entries = {kv.key: kv.value for kv in tensor.external_data}
            external.append({"tensor": tensor.name, "location": entries.get("location", ""), **entries})
    opsets: dict[str, int] = {}
    for imp in model.opset_import:
        opsets[imp.domain or "ai.onnx"] = max(imp.version, opsets.get(imp.domain or "ai.onnx", 0))
    _emit(
        "inspected",
        parsed=True,
        ir_version=model.ir_version,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        opsets=opsets,
        domains=domains,
        external=external,
        nodes=n_nodes,
    )
    mode = job.get("checker", "none")
    if mode == "auto":  # check right away unless external data must be judged first
        mode = "none" if external else "proto"
    if mode not in {"proto", "path"}:
        return
    try:
        if mode == "path":
            onnx.checker.check_model(job["model"], full_check=True)
        else:
            onnx.checker.check_model(model, full_check=True)
        _emit("checked", ok=True, error="")
    except Exception as e:  # noqa: BLE001
        _emit("checked", ok=False, error=_describe(e))


def _meta(args: Any) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "type": a.type, "shape": [d if isinstance(d, int) else None for d in a.shape]}
        for a in args
    ]


def _run(job: dict[str, Any]) -> None:
    import numpy as np
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(job.get("threads", 1))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(job["model"], sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        _emit("load_error", error=_describe(e), seconds=time.perf_counter() - start)
        return
    _emit(
        "loaded",
        seconds=time.perf_counter() - start,
        maxrss_kb=_peak_rss_kb(),
        inputs=_meta(session.get_inputs()),
        outputs=_meta(session.get_outputs()),
    )
    input_name = session.get_inputs()[0].name if session.get_inputs() else "input"
    for case in job.get("cases", []):
        x = np.load(case["file"], allow_pickle=False)
        feeds = {input_name: x}
        if case.get("categorical_file"):
            feeds["categorical"] = np.load(case["categorical_file"], allow_pickle=False).astype(object)
        _emit("start", id=case["id"])
        times: list[float] = []
        cpu0 = time.process_time()
        try:
            repeat, min_seconds = int(case.get("repeat", 1)), float(case.get("min_seconds", 0.0))
            started = time.perf_counter()
            while len(times) < repeat or time.perf_counter() - started < min_seconds:
                t0 = time.perf_counter()
                outputs = session.run(None, feeds)
                times.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            _emit("error", id=case["id"], error=_describe(e))
            continue
        cpu = time.process_time() - cpu0
        names = [o.name for o in session.get_outputs()]
        files = {}
        size = sum(np.asarray(v).nbytes for v in outputs)
        if case.get("save", True) and size > int(job.get("max_output_bytes", 2**28)):
            _emit("error", id=case["id"], error=f"the outputs take {size / 2**20:.0f} MB; not written")
            continue
        if case.get("save", True):
            for i, (name, value) in enumerate(zip(names, outputs, strict=False)):
                path = f"{job['outdir']}/{case['id']}.{i}.npy"
                np.save(path, np.asarray(value), allow_pickle=False)
                files[name] = path
        _emit(
            "done",
            id=case["id"],
            times=times,
            cpu_seconds=cpu,
            outputs={
                n: {"dtype": str(np.asarray(v).dtype), "shape": list(np.asarray(v).shape)}
                for n, v in zip(names, outputs, strict=False)
            },
            files=files,
            maxrss_kb=_peak_rss_kb(),
        )


def main(argv: list[str]) -> int:
    global _events
    job_path, events_path, memory_mb, cpu_seconds = argv[0], argv[1], int(argv[2]), int(argv[3])
    _events = open(events_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
    _limit(memory_mb, cpu_seconds)
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    try:
        if job["op"] == "inspect":
            _inspect(job)
        elif job["op"] == "run":
            _run(job)
        else:
            _emit("fatal", error=f"unknown op {job['op']!r}")
            return 2
    except MemoryError as e:
        _emit("fatal", error=f"MemoryError: {e}")
        return 3
    _emit("end", maxrss_kb=_peak_rss_kb())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
