"""Codecs: bytes on the wire <-> what the data plane works with. The predictor never parses.

- :func:`check_structure` bounds a body's containers and nesting depth on the raw bytes, before any
  parsing (a 4 MB body of 200,000 ``[`` is refused in microseconds and allocates nothing).
- :func:`decode_json` is strict JSON (orjson; the error message from python-rapidjson or the stdlib):
  ``NaN``/``Infinity`` literals, invalid UTF-8 and absurd nesting
  are refused with :class:`InvalidInputError` (never a 500). Every failure raises a new exception
  object: a shared one would collect every failed request's traceback, frames and body.
- :func:`decode_predict` reads the ``/predict`` body ``{"model", "version"?, "inputs" | "instances"}``;
  :func:`read_predict` first hands a large one to the compiled reader of all-number rows
  (:mod:`serving.number_rows`), and bounds and decodes it here only when that reader declines.
- :func:`decode_v2` reads an Open Inference Protocol (KServe v2) infer request, JSON or with the
  binary-data extension (``Inference-Header-Content-Length``), into a float64 matrix.
- :func:`encode_predictions` / :func:`encode_v2` write answers; probabilities are checked finite by
  the predictor, and everything is dumped with ``allow_nan=False`` so no bare ``NaN`` ever leaves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from . import number_rows
from .errors import InvalidInputError

__all__ = [
    "PredictRequest",
    "V2Request",
    "check_structure",
    "decode_json",
    "decode_json_rapid",
    "decode_json_stdlib",
    "decode_predict",
    "decode_v2",
    "encode_multi_output",
    "encode_predictions",
    "encode_v2",
    "may_hold_booleans",
    "read_predict",
    "v2_json_part",
    "v2_matrix",
]

V2_DTYPES = {
    "FP32": np.float32,
    "FP64": np.float64,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "INT16": np.int16,
    "INT8": np.int8,
    "UINT8": np.uint8,
}


def _reject_constant(name: str) -> Any:
    raise _literal_error(name)


def _literal_error(name: str) -> InvalidInputError:
    return InvalidInputError(
        f"the body contains the literal {name}, which is not valid JSON",
        "send finite numbers only; drop or impute missing values before calling",
        code="non_finite",
    )


def _too_deep(detail: str = "") -> InvalidInputError:
    return InvalidInputError(
        f"the body is nested too deeply{detail}",
        "send a list of rows, each a list or object of numbers",
        code="too_deep",
    )


_PREDICT_KEYS = frozenset({"model", "version", "inputs", "instances", "explain"})
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_NUMPY_SCAN_FROM = 8 * 1024  # bytes; below, two bytes.count and translate are cheaper than numpy's setup


def check_structure(body: bytes, max_containers: int, max_depth: int) -> None:
    """Refuse, before parsing, a body with more than ``max_containers`` arrays/objects or nesting deeper
    than ``max_depth``. Brackets inside JSON strings count too (harmless for numeric rows).

    Cost: ~1 us for a one-row body; a large one is first cut down to its brackets (``bytes.translate``),
    and only when those are many a vectorised pass (``'[' | 0x20 == '{'`` and ``']' | 0x20 == '}'``, so
    one OR and two compares find every bracket) follows: a few percent of the parse.
    """
    if len(body) >= _NUMPY_SCAN_FROM:
        # one C pass keeps only the brackets (a few hundred bytes for 100 rows: 3-6x cheaper than a numpy
        # scan of the whole body); only a body that is mostly brackets needs the numpy pass after it
        body = body.translate(None, _NOT_BRACKETS)
        if len(body) >= _NUMPY_SCAN_FROM:
            return _check_large(body, max_containers, max_depth)
    opened = body.count(b"[") + body.count(b"{")
    if opened <= max_depth:
        return  # cannot nest deeper than it has containers
    _check_count(opened, max_containers)
    # peel the innermost level of pairs per pass: pairs left after max_depth passes nest deeper. A pass
    # that peels nothing means unbalanced brackets (invalid JSON, or brackets inside strings): the
    # parser, bounded by the container count above, has the last word then.
    shape = body.translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        peeled = shape.replace(b"[]", b"").replace(b"{}", b"")
        if peeled == shape:
            return
        shape = peeled
    if b"[]" in shape or b"{}" in shape:
        raise _too_deep(f" (more than {max_depth} levels)")


def _check_count(opened: int, max_containers: int) -> None:
    if opened > max_containers:
        raise InvalidInputError(
            f"the body holds {opened} arrays or objects; at most {max_containers} are accepted",
            "send fewer rows per request, each a flat list or object of numbers",
            code="too_many_values",
        )


def _check_large(body: bytes, max_containers: int, max_depth: int) -> None:
    folded = np.frombuffer(body, dtype=np.uint8) | 0x20  # '[' -> '{', ']' -> '}'; nothing else maps there
    opens = folded == 0x7B
    opened = int(np.count_nonzero(opens))
    if opened <= max_depth:
        return
    _check_count(opened, max_containers)
    at = np.flatnonzero(opens | (folded == 0x7D))
    depth = np.cumsum(opens[at].astype(np.int16) * 2 - 1)
    if int(depth.max()) > max_depth:
        raise _too_deep(f" (more than {max_depth} levels)")


_STDLIB_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
try:  # python-rapidjson parses numbers ~6x faster than the stdlib (benchmarks/serving.py)
    import rapidjson

    _RAPID_DECODER: Any = rapidjson.Decoder(number_mode=rapidjson.NM_NATIVE)
except ImportError:  # pragma: no cover - the stdlib path below is tested directly
    rapidjson = None
    _RAPID_DECODER = None


def dumps(data: Any) -> str:
    """JSON text; raises ValueError on NaN/Infinity instead of writing invalid JSON."""
    if rapidjson is not None:
        return rapidjson.dumps(data)
    return json.dumps(data, allow_nan=False)


def _invalid_json(detail: str) -> InvalidInputError:
    return InvalidInputError(
        f"the body is not valid JSON: {detail}",
        'send a JSON object such as {"model": "demo", "inputs": [[1.0, 2.0]]}',
        code="invalid_json",
    )


def _utf8_error(e: UnicodeDecodeError) -> InvalidInputError:
    return InvalidInputError(f"the body is not UTF-8 text: {e.reason}", "send UTF-8 encoded JSON")


def decode_json_stdlib(body: bytes) -> Any:
    """Strict JSON with the standard library (the fallback when python-rapidjson is missing)."""
    try:
        return _STDLIB_DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _utf8_error(e) from None
    except json.JSONDecodeError as e:
        raise _invalid_json(f"{e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise _too_deep() from None


def decode_json_rapid(body: bytes) -> Any:
    """Strict JSON with python-rapidjson (NaN/Infinity and numbers beyond float64 are refused)."""
    try:
        return _RAPID_DECODER(body)
    except UnicodeDecodeError as e:
        raise _utf8_error(e) from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError as e:  # rapidjson.JSONDecodeError: 'Parse error at offset N: what.'
        text = str(e)
        offset = int(text.split("offset ", 1)[1].split(":", 1)[0]) if "offset " in text else 0
        near = body[max(0, offset - 1) : offset + 9]
        for literal in (b"-Infinity", b"Infinity", b"NaN"):
            if literal in near:
                raise _literal_error(literal.decode()) from None
        if "too big" in text:
            raise InvalidInputError(
                f"a number near byte {offset} of the body is beyond float64 range",
                "send values within the range the model was trained on",
                code="value_overflow",
            ) from None
        raise _invalid_json(f"{text.split(': ', 1)[-1].rstrip('.')} at byte {offset}") from None


def decode_json(body: bytes) -> Any:
    """Strict JSON -> Python objects; every failure is an :class:`InvalidInputError`.

    orjson parses first (strict RFC 8259 like the decoders below: no NaN/Infinity, no numbers beyond
    float64, valid UTF-8 only; ~2x python-rapidjson on 100 rows of 30 numbers); a body it refuses is
    parsed again by the decoder that names what is wrong and where."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    if _RAPID_DECODER is not None:
        return decode_json_rapid(body)
    return decode_json_stdlib(body)


_TRUE_FALSE = ((b"r", b"u"), (b"a", b"l"))  # every ``true`` holds "ru", every ``false`` "al"
_NULL = ((b"l", b"l"),)  # every ``null`` holds "ll"


def may_hold_booleans(body: bytes, pairs: tuple[tuple[bytes, bytes], ...] = _TRUE_FALSE) -> bool:
    """False only when the body cannot hold a JSON ``true`` or ``false`` (with ``pairs=_NULL``: ``null``):
    none of the byte pairs of those literals occurs in it (no escape can spell a literal). Each candidate
    is found by ``bytes.find`` (memchr: ~1 us over 60 kB); after a few candidates that are not the pair,
    the answer is "may" (the validators then take their type-checking path)."""
    for first, second in pairs:
        at = body.find(first)
        for _ in range(8):
            if at < 0:
                break
            if body[at + 1 : at + 2] == second:
                return True
            at = body.find(first, at + 1)
        else:
            return True
    return False


def _quotes_at_most(body: bytes, limit: int) -> bool:
    """True when the body holds at most ``limit`` ``"`` bytes (memchr per quote, stops past the limit)."""
    at = -1
    for _ in range(limit + 1):
        at = body.find(b'"', at + 1)
        if at < 0:
            return True
    return False


def _only_numbers(body: bytes, obj: dict[str, Any], booleans: bool) -> bool:
    """True when, beyond the envelope's own strings (its keys and the model's name), the body holds no
    string, ``true``, ``false`` or ``null``: every JSON string brings two unescaped quotes, so a body
    with no more quotes than those strings have holds no other string."""
    return (
        not booleans
        and not may_hold_booleans(body, _NULL)
        and _quotes_at_most(body, 2 * (len(obj) + 1))
    )


@dataclass(frozen=True, slots=True)
class PredictRequest:
    model: str
    version: int | None
    inputs: Any
    explain: bool = False
    #: named-column rows (objects keyed by column name); None when the body sent positional 'inputs'
    instances: Any = None
    #: False when the body holds no JSON true/false anywhere (:func:`may_hold_booleans`): the validators
    #: may then let numpy find the value types in one pass over the rows
    booleans: bool = True
    #: True when the body holds no string, boolean or null beyond the envelope (``_only_numbers``): every
    #: value in 'inputs' is a number, a list or an empty object
    numbers_only: bool = False
    #: the rows already read into float64 [N, W] (:mod:`serving.number_rows`; ``inputs`` is then None):
    #: every row was a list of W numbers
    matrix: np.ndarray | None = None


def decode_predict(body: bytes) -> PredictRequest:
    obj = decode_json(body)
    if type(obj) is not dict:
        raise InvalidInputError(
            "the body must be a JSON object",
            'send {"model": "NAME", "inputs": [[...], ...]}',
            code="bad_body",
        )
    if not obj.keys() <= _PREDICT_KEYS:
        unknown = sorted(set(obj) - _PREDICT_KEYS)
        raise InvalidInputError(
            f"unknown field(s) {unknown} in the body",
            "use only 'model', 'version', 'inputs' or 'instances', and 'explain'",
            code="bad_body",
        )
    model = obj.get("model")
    if type(model) is not str or not model:
        raise InvalidInputError(
            "'model' must be the model's name as a string",
            "GET /models lists the served models",
            code="bad_body",
        )
    version = obj.get("version")
    if version is not None and (type(version) is not int or version < 1):
        raise InvalidInputError(
            f"'version' must be a positive integer, got {version!r}",
            "omit 'version' to use the released version",
            code="bad_body",
        )
    if ("inputs" in obj) == ("instances" in obj):
        raise InvalidInputError(
            "'inputs' and 'instances' are both sent" if "inputs" in obj else "'instances' is missing",
            "send 'instances': a list of objects keyed by column name (or, for all-numeric models, "
            "'inputs': a list of rows in feature order)",
            code="bad_body",
        )
    explain = obj.get("explain", False)
    if type(explain) is not bool:
        raise InvalidInputError(
            f"'explain' must be true or false, got {explain!r}",
            'send "explain": true to add the prose on how to read the answer',
            code="bad_body",
        )
    booleans = len(body) < _NUMPY_SCAN_FROM or may_hold_booleans(body)
    numbers_only = "inputs" in obj and _only_numbers(body, obj, booleans)
    return PredictRequest(
        model, version, obj.get("inputs"), explain, obj.get("instances"), booleans, numbers_only
    )


#: bytes; below, orjson's Python lists cost less than the compiled reader's setup (benchmarks/serving.py)
_NUMBER_ROWS_FROM = 4 * 1024


def read_predict(body: bytes, max_containers: int, max_depth: int) -> PredictRequest:
    """The ``/predict`` body as :func:`decode_predict` reads it. A large body of all-number rows is read
    by :func:`serving.number_rows.read` (which validates it fully, bounds its depth and allocates one
    buffer); any other body is bounded by :func:`check_structure`, then decoded."""
    if len(body) >= _NUMBER_ROWS_FROM:
        rows = number_rows.read(body, max_containers)
        if rows is not None:
            return PredictRequest(rows.model, rows.version, None, booleans=False, numbers_only=True,
                                  matrix=rows.matrix)
    check_structure(body, max_containers, max_depth)
    return decode_predict(body)


@lru_cache(maxsize=64)
def _row_format(classes: tuple[str, ...]) -> tuple[bytes, list[bytes]]:
    """A bytes %-format for one prediction (label, one value per class, warnings) and the JSON of each
    label, built once per class list."""
    probs = b",".join(orjson.dumps(c) + b":%s" for c in classes)
    return b'{"label":%s,"probabilities":{' + probs + b'},"warnings":%s}', [orjson.dumps(c) for c in classes]


def encode_predictions(
    prefix: str,
    classes: list[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    warnings: list[list[str]] | None,
) -> bytes:
    """The /predict answer; ``prefix`` is the predictor's pre-serialised model block.

    All rows in one pass (benchmarks/serving.py: 3-6x cheaper than one %-format per row on 100 and
    1,000 rows): orjson writes every probability (finite: the predictor checks; rounded to 6 decimals)
    in one C call, the value texts are split apart and interleaved with the label and warnings
    fragments by slice assignment, and one %-format of the row template repeated n times writes the
    whole list.
    """
    fmt, label_json = _row_format(tuple(classes))
    n, c = probabilities.shape  # n >= 1: the validators refuse an empty batch
    rounded = np.round(probabilities.astype(np.float64), 6).ravel()
    values = orjson.dumps(rounded, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    width = c + 2  # label, c probabilities, warnings
    fields: list[bytes] = [b"[]"] * (n * width)
    fields[0::width] = [label_json[lab] for lab in labels.tolist()]
    for k in range(c):
        fields[1 + k :: width] = values[k::c]
    if warnings is not None:
        fields[width - 1 :: width] = [orjson.dumps(w) for w in warnings]
    rows = b",".join([fmt] * n) % tuple(fields)
    return prefix.encode() + b',"predictions":[' + rows + b"]}"


def encode_multi_output(
    prefix: str,
    classes: list[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    warnings: list[list[str]] | None,
    heads: list[Any],
    extra: tuple[np.ndarray, ...],
) -> bytes:
    """The /predict answer of a multi-output model: each row as :func:`encode_predictions` writes it plus
    ``"outputs": {HEAD: {"label": .., "probabilities": {..}} | {"value": ..}}`` for every head after the
    first (``heads``: the card's ``outputs[1:]``; ``extra``: their graph outputs, in that order)."""
    per_head: list[list[dict[str, Any]]] = []
    k = 0
    for head in heads:
        if head.kind == "classification":
            idx, probs = extra[k], np.round(extra[k + 1].astype(np.float64), 6)
            per_head.append([
                {"label": head.classes[int(i)],
                 "probabilities": dict(zip(head.classes, row.tolist(), strict=True))}
                for i, row in zip(idx.tolist(), probs, strict=True)
            ])
            k += 2
        else:
            per_head.append([{"value": v} for v in np.round(extra[k].astype(np.float64), 6).tolist()])
            k += 1
    rows = [
        {"label": classes[int(lab)],
         "probabilities": dict(zip(classes, np.round(p.astype(np.float64), 6).tolist(), strict=True)),
         "outputs": {h.name: values[i] for h, values in zip(heads, per_head, strict=True)},
         "warnings": warnings[i] if warnings is not None else []}
        for i, (lab, p) in enumerate(zip(labels.tolist(), probabilities, strict=True))
    ]
    return prefix.encode() + b',"predictions":' + orjson.dumps(rows) + b"}"


# ---------------------------------------------------------------------------------------- v2
@dataclass(frozen=True, slots=True)
class V2Request:
    id: str | None
    matrix: np.ndarray
    input_name: str


def v2_json_part(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    if header_length is None:
        return decode_json(body), b""
    try:
        n = int(header_length)
    except ValueError:
        raise InvalidInputError(
            f"Inference-Header-Content-Length is {header_length!r}, not an integer",
            "set it to the byte length of the JSON header",
            code="bad_body",
        ) from None
    if not 0 < n <= len(body):
        raise InvalidInputError(
            f"Inference-Header-Content-Length {n} does not fit a body of {len(body)} bytes",
            "set it to the byte length of the JSON header",
            code="bad_body",
        )
    return decode_json(body[:n]), body[n:]


def decode_v2(body: bytes, header_length: str | None, n_features: int) -> V2Request:
    """An infer request with exactly one input tensor of shape [N, n_features] -> float64 matrix."""
    obj, binary = v2_json_part(body, header_length)
    return v2_matrix(obj, binary, n_features)


def v2_matrix(obj: Any, binary: bytes, n_features: int) -> V2Request:
    """:func:`decode_v2` on an already decoded JSON header and the binary part after it."""
    if type(obj) is not dict or type(obj.get("inputs")) is not list or len(obj["inputs"]) != 1:
        raise InvalidInputError(
            "an infer request needs 'inputs' with exactly one tensor",
            'send {"inputs": [{"name": "input", "shape": [N, F], "datatype": "FP32", "data": [...]}]}',
            code="bad_body",
        )
    tensor = obj["inputs"][0]
    if type(tensor) is not dict:
        raise InvalidInputError(
            "inputs[0] must be an object", "see the Open Inference Protocol", code="bad_body"
        )
    name = tensor.get("name", "input")
    dtype_name = tensor.get("datatype")
    shape = tensor.get("shape")
    if dtype_name not in V2_DTYPES:
        raise InvalidInputError(
            f"inputs[0].datatype {dtype_name!r} is not numeric",
            f"use one of {sorted(V2_DTYPES)} (FP32 preferred)",
            code="not_a_number",
        )
    if (
        type(shape) is not list
        or len(shape) != 2
        or not all(type(s) is int and s >= 0 for s in shape)
        or shape[1] != n_features
    ):
        raise InvalidInputError(
            f"inputs[0].shape is {shape!r}; this model takes [N, {n_features}]",
            f"send shape [rows, {n_features}]",
            code="feature_count",
        )
    count = shape[0] * shape[1]
    dtype = np.dtype(V2_DTYPES[dtype_name])
    params = tensor.get("parameters") or {}
    if type(params) is dict and "binary_data_size" in params:
        size = params["binary_data_size"]
        if type(size) is not int or size != count * dtype.itemsize or size > len(binary):
            raise InvalidInputError(
                f"binary_data_size {size!r} does not match shape {shape} of {dtype_name}",
                "send shape[0]*shape[1]*itemsize bytes after the JSON header",
                code="bad_body",
            )
        flat = np.frombuffer(binary[:size], dtype=dtype).astype(np.float64)
    else:
        data = tensor.get("data")
        if type(data) is not list:
            raise InvalidInputError(
                "inputs[0].data must be a list of numbers", "see the protocol", code="bad_body"
            )
        if data and type(data[0]) is list:
            data = [v for row in data for v in (row if type(row) is list else [row])]
        if not set(map(type, data)) <= {int, float}:
            bad = next(v for v in data if type(v) not in (int, float))
            raise InvalidInputError(
                f"inputs[0].data holds {type(bad).__name__} {bad!r}; expected numbers",
                "send numbers only",
                code="not_a_number",
            )
        if len(data) != count:
            raise InvalidInputError(
                f"inputs[0].data has {len(data)} values but shape {shape} needs {count}",
                "make data match the shape",
                code="feature_count",
            )
        try:
            flat = np.array(data, dtype=np.float64)
        except OverflowError:
            raise InvalidInputError(
                "inputs[0].data holds an integer too large for a float",
                "send finite numbers",
                code="value_overflow",
            ) from None
    request_id = obj.get("id")
    return V2Request(request_id if type(request_id) is str else None, flat.reshape(shape), name)


def encode_v2(
    model: str,
    version: int,
    request_id: str | None,
    labels: np.ndarray,
    probabilities: np.ndarray,
    metadata: dict[str, Any],
    classes: list[str],
    warnings: list[list[str]] | None = None,
    gateway_id: str | None = None,
) -> bytes:
    """The /v2 infer answer; ``request_id`` is the request's own ``id`` (echoed as ``id``), ``gateway_id``
    the gateway's request id (``parameters.request_id``, also the X-Request-Id header)."""
    n, c = probabilities.shape
    answer: dict[str, Any] = {
        "model_name": model,
        "model_version": str(version),
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [n], "data": labels.tolist()},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [n, c],
                "data": np.round(probabilities.astype(np.float64), 6).ravel().tolist(),
            },
        ],
        "parameters": {
            "sha256": metadata["sha256"],
            "classes": ",".join(classes),
            "calibration": metadata["calibration"],
        },
    }
    if metadata.get("upstream"):  # a composed model: the upstream versions used, as text
        answer["parameters"]["upstream"] = ",".join(
            f"{u['name']}:{u['version']}@{u['sha256']}" for u in metadata["upstream"]
        )
    if metadata.get("rollout"):  # a canary candidate answered (serving/rollout.py)
        answer["parameters"]["rollout"] = metadata["rollout"]
    if warnings is not None:  # per row, as JSON text (parameters hold scalars)
        answer["parameters"]["warnings"] = dumps(warnings)
    if gateway_id is not None:
        answer["parameters"]["request_id"] = gateway_id
    if request_id is not None or gateway_id is not None:
        answer["id"] = request_id if request_id is not None else gateway_id
    return dumps(answer).encode()
