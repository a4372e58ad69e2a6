"""Open Inference Protocol (KServe v2) tensors <-> the model's columns.

Two request shapes reach ``/v2/models/{name}/infer``:

- the legacy one: a single tensor ``input`` ``[N, F]`` of numbers, for all-numeric models only;
- one named tensor per column (any model; the only shape for models with categorical or boolean
  columns): shape ``[N]`` or ``[N, 1]``; ``FP32``/``FP64``/``INT*`` for numeric columns, ``BYTES`` for
  categorical ones, ``BOOL`` or ``BYTES`` for booleans. JSON ``data`` or the binary-data extension
  (``BYTES`` elements as a 4-byte little-endian length then the UTF-8 bytes, as tritonclient writes
  them). A NaN in a numeric tensor is a missing value; a column without a tensor is missing in every row.

The per-column values then go through the same :class:`serving.columns.TableSchema` checks as
``/predict`` instances, so both transports refuse and warn alike.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import codecs
from .columns import Column
from .errors import InvalidInputError
from .validation import RowValidator

__all__ = ["V2Inputs", "decode_v2_request", "v2_inputs"]

_NUMERIC = frozenset(codecs.V2_DTYPES)
_ACCEPTS = {"numeric": _NUMERIC, "categorical": frozenset({"BYTES"}), "boolean": frozenset({"BOOL", "BYTES"})}
_METADATA_DTYPE = {"numeric": "FP32", "categorical": "BYTES", "boolean": "BOOL"}


@dataclass(frozen=True, slots=True)
class V2Inputs:
    id: str | None
    numeric: np.ndarray
    categorical: np.ndarray | None
    notes: list[list[str]] | None


def v2_inputs(validator: RowValidator) -> list[dict[str, Any]]:
    """The ``inputs`` of the model metadata: the legacy ``input`` for all-numeric models, else one per
    column."""
    table = validator.table
    if not table.mixed:
        return [{"name": "input", "datatype": "FP32", "shape": [-1, validator.n_features]}]
    return [
        {
            "name": c.name,
            "datatype": _METADATA_DTYPE[c.kind],
            "shape": [-1],
            "parameters": {"kind": c.kind, "missing_allowed": c.allows_missing},
        }
        for c in table.columns
    ]


def _bad(message: str, fix: str, code: str = "bad_body") -> InvalidInputError:
    return InvalidInputError(message, fix, code=code)


def _is_legacy(tensors: list[Any], validator: RowValidator) -> bool:
    if validator.table.mixed or len(tensors) != 1 or type(tensors[0]) is not dict:
        return False
    shape = tensors[0].get("shape")
    return tensors[0].get("name", "input") not in validator.table.known or (
        type(shape) is list and len(shape) == 2 and shape[1] != 1
    )


def decode_v2_request(body: bytes, header_length: str | None, validator: RowValidator) -> V2Inputs:
    """An infer request (either shape above) -> the model's numeric and categorical arrays."""
    obj, binary = codecs.v2_json_part(body, header_length)
    tensors = obj.get("inputs") if type(obj) is dict else None
    if type(tensors) is not list or not tensors:
        raise _bad(
            "an infer request needs 'inputs': a list of tensors",
            'send one tensor per column: {"inputs": [{"name": "<column>", "shape": [N], "datatype": '
            '"FP32" | "BYTES" | "BOOL", "data": [...]}, ...]}',
        )
    request_id = obj.get("id")
    request_id = request_id if type(request_id) is str else None
    if _is_legacy(tensors, validator):
        matrix = codecs.v2_matrix(obj, binary, validator.n_features).matrix
        validator.check_count(matrix.shape[0])
        return V2Inputs(request_id, validator.check_values(matrix, "inputs[0].data"), None, None)
    table = validator.table
    names = {t.get("name") for t in tensors if type(t) is dict and type(t.get("name")) is str}
    if table.mixed and "input" in names - table.known:
        raise _bad(
            f"{validator.model} has categorical or boolean columns, so it takes one tensor per column, "
            "not one 'input' matrix",
            f"send one tensor per column, named {table.names} (GET /v2/models/NAME lists their datatypes)",
            code="use_column_tensors",
        )
    table.check_names(names, "inputs", lambda name: None)
    columns, n = _columns(tensors, binary, validator)
    validator.check_count(n)

    def at(i: int, name: str) -> str:
        return f"input {name!r}[{i}]"

    numeric, categorical, notes = table.assemble(columns.get, n, at)
    return V2Inputs(request_id, numeric, categorical, notes)


def _columns(tensors: list[Any], binary: bytes, validator: RowValidator) -> tuple[dict[str, list[Any]], int]:
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    offset = 0
    for k, t in enumerate(tensors):
        if type(t) is not dict or type(t.get("name")) is not str:
            raise _bad(f"inputs[{k}] must be an object with a 'name'", "name each tensor after its column")
        name, dtype, shape = t["name"], t.get("datatype"), t.get("shape")
        if name in columns:
            raise _bad(f"two tensors are named {name[:40]!r}", "send one tensor per column")
        if (
            type(shape) is not list
            or not 1 <= len(shape) <= 2
            or not all(type(s) is int and s >= 0 for s in shape)
            or (len(shape) == 2 and shape[1] != 1)
        ):
            raise _bad(
                f"input {name[:40]!r} has shape {shape!r}; a column tensor is [N] or [N, 1]",
                "send one tensor per column with shape [rows]",
                code="feature_count",
            )
        if rows is not None and shape[0] != rows:
            raise _bad(
                f"input {name[:40]!r} has {shape[0]} rows, the first tensor {rows}",
                "send the same number of rows in every column tensor",
                code="feature_count",
            )
        rows = shape[0]
        col = validator.table.by_name.get(name)
        _check_dtype(col, name, dtype)
        params = t.get("parameters") or {}
        if type(params) is dict and "binary_data_size" in params:
            size = params["binary_data_size"]
            if type(size) is not int or size < 0 or offset + size > len(binary):
                raise _bad(
                    f"input {name[:40]!r}: binary_data_size {size!r} does not fit the binary part",
                    "send each tensor's bytes after the JSON header, in the order of 'inputs'",
                )
            columns[name] = _binary_values(name, dtype, rows, binary[offset : offset + size])
            offset += size
        else:
            columns[name] = _json_values(name, t.get("data"), rows)
    return columns, rows or 0


def _check_dtype(col: Column | None, name: str, dtype: Any) -> None:
    accepted = _NUMERIC | {"BYTES", "BOOL"} if col is None else _ACCEPTS[col.kind]
    if col is not None and col.accepts_bool:
        accepted = accepted | {"BOOL"}
    if dtype not in accepted:
        what = f"{col.kind} column" if col is not None else "tensor"
        raise _bad(
            f"input {name[:40]!r} has datatype {dtype!r}; a {what} takes {sorted(accepted)}",
            "see GET /v2/models/{name} for each column's datatype",
            code="wrong_kind",
        )


def _json_values(name: str, data: Any, rows: int) -> list[Any]:
    if type(data) is not list:
        raise _bad(f"input {name[:40]!r}: 'data' must be a list", "send the column's values as a list")
    if data and type(data[0]) is list:  # [[v], [v], ...] for shape [N, 1]
        data = [v for row in data for v in (row if type(row) is list else [row])]
    if len(data) != rows:
        raise _bad(
            f"input {name[:40]!r} has {len(data)} values but its shape says {rows}",
            "make data match the shape",
            code="feature_count",
        )
    return data


def _binary_values(name: str, dtype: str, rows: int, raw: bytes) -> list[Any]:
    if dtype == "BYTES":
        return _bytes_elements(name, raw, rows)
    item = np.dtype(np.bool_) if dtype == "BOOL" else np.dtype(codecs.V2_DTYPES[dtype])
    if len(raw) != rows * item.itemsize:
        raise _bad(
            f"input {name[:40]!r}: {len(raw)} bytes do not hold {rows} {dtype} values",
            "send rows * itemsize bytes for the tensor",
        )
    values = np.frombuffer(raw, dtype=item).tolist()
    if dtype.startswith("FP"):
        values = [None if math.isnan(v) else v for v in values]  # NaN = missing
    return values


def _bytes_elements(name: str, raw: bytes, rows: int) -> list[Any]:
    out: list[Any] = []
    at = 0
    while at < len(raw):
        if at + 4 > len(raw):
            break
        (length,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + length > len(raw):
            break
        try:
            out.append(raw[at : at + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise _bad(
                f"input {name[:40]!r}[{len(out)}] is not UTF-8 text",
                "send categorical levels as UTF-8 strings",
                code="not_utf8",
            ) from None
        at += length
    if at != len(raw) or len(out) != rows:
        raise _bad(
            f"input {name[:40]!r}: the BYTES data hold {len(out)} complete elements, the shape says {rows}",
            "send each element as a 4-byte little-endian length followed by its bytes",
        )
    return out
