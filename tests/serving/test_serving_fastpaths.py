"""The validators' whole-table fast paths (benchmarks/serving.py) answer exactly as the checked paths.

A large body without a JSON ``true``/``false`` lets numpy find the value types while it builds the
matrix (``booleans=False``, :func:`serving.codecs.may_hold_booleans`); one with no string, boolean or
null beyond its envelope (``numbers_only``) is read by ``np.fromiter``; a categorical column whose
levels are checked skips its type pass; a large all-number body is read by the compiled reader
(:mod:`serving.number_rows`, simdjson) without its Python lists. Each case below spoils one cell (or the
envelope, or a row's shape) of a 100-row body and checks that the fast path gives the same matrix, or the
same refusal (code and message), as the checked path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cascade_registry.artifacts import ModelBundle
from serving import codecs
from serving.errors import ServingError
from serving.validation import RowValidator
from tests.tables import bench_table, mixed_bundle, sample_rows

BAD_CELLS: list[Any] = [
    "1.5", "abc", "", None, True, False, [1.0], {"a": 1}, {}, 10**30, 2**64, -(2**63) - 1, 10**300, 1e39,
    -0.0, 7,
]


def short(value: Any) -> str:
    return repr(value)[:24]


@pytest.fixture(scope="module")
def numeric(trained_demo: Path) -> tuple[RowValidator, list[list[float]]]:
    bundle = ModelBundle.load(trained_demo)
    rows = np.load(trained_demo / "reference.npz")["inputs"][:100].astype(np.float64).tolist()
    return RowValidator(bundle.card, 1024), rows


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, trained_demo: Path) -> RowValidator:
    table = bench_table(numeric=3, categorical=3)
    path = mixed_bundle(tmp_path_factory.mktemp("fastpaths"), trained_demo, table)
    return RowValidator(ModelBundle.load(path).card, 1024)


def outcome(fn, *args, **kwargs) -> Any:
    """What a validator answers: its arrays, or the refusal's code and message."""
    try:
        result = fn(*args, **kwargs)
    except ServingError as e:
        return ("refused", e.code, e.message)
    parts = result if isinstance(result, tuple) else (result,)
    return tuple(p.tolist() if isinstance(p, np.ndarray) else p for p in parts)


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, default=str) == json.dumps(b, default=str)  # NaN == NaN as text


def test_large_plain_bodies_take_the_fast_path(numeric, mixed):
    _, rows = numeric
    for body in (
        json.dumps({"model": "m", "inputs": rows}).encode(),
        json.dumps({"model": "m", "instances": sample_rows(bench_table(3, 3), 100)}).encode(),
    ):
        assert len(body) > 8192 and codecs.decode_predict(body).booleans is False
    assert codecs.decode_predict(json.dumps({"model": "m", "inputs": rows}).encode()).numbers_only
    explained = json.dumps({"model": "m", "inputs": rows, "explain": True}).encode()
    assert codecs.decode_predict(explained).booleans
    for envelope in ({"model": 'a"b'}, {"model": "m", "version": None}, {"model": "m", "version": 2}):
        request = codecs.decode_predict(json.dumps({**envelope, "inputs": rows}).encode())
        assert request.numbers_only is ("version" in envelope and envelope["version"] == 2)


@pytest.mark.parametrize("cell", BAD_CELLS, ids=short)
def test_positional_rows_answer_as_the_checked_path(numeric, cell):
    validator, rows = numeric
    spoilt = [list(r) for r in rows]
    spoilt[57][3] = cell
    request = codecs.decode_predict(json.dumps({"model": "m", "inputs": spoilt}).encode())
    if isinstance(cell, bool):
        assert request.booleans, "a body with a JSON boolean must say so"
    if cell is None or isinstance(cell, (str, bool)):
        assert not request.numbers_only, "a body with a string, boolean or null must say so"
    fast = outcome(validator.to_matrix, request.inputs, "inputs", request.booleans, request.numbers_only)
    assert same(fast, outcome(validator.to_matrix, request.inputs, booleans=True))
    if not isinstance(cell, (int, float)) or isinstance(cell, bool) or abs(cell) > 3.4e38:
        assert fast[0] == "refused" and "inputs[57]" in fast[2]


@pytest.mark.parametrize("shape", ["short row", "dict row", "flat number row", "nested"])
def test_ragged_positional_rows_answer_as_the_checked_path(numeric, shape):
    validator, rows = numeric
    spoilt: list[Any] = [list(r) for r in rows]
    spoilt[10] = {
        "short row": spoilt[10][:-1],
        "dict row": {"x": 1},
        "flat number row": 1.0,
        "nested": [spoilt[10]] * 1,
    }[shape]
    request = codecs.decode_predict(json.dumps({"model": "m", "inputs": spoilt}).encode())
    fast = outcome(validator.to_matrix, request.inputs, "inputs", request.booleans, request.numbers_only)
    assert fast[0] == "refused"
    assert same(fast, outcome(validator.to_matrix, request.inputs, booleans=True))


@pytest.mark.parametrize("column", ["x1", "c1"])
@pytest.mark.parametrize("cell", [*BAD_CELLS, "level1", "level0", "unseen", "absent"], ids=short)
def test_named_columns_answer_as_the_checked_path(mixed, column, cell):
    rows = sample_rows(bench_table(3, 3), 100)
    if cell == "absent":
        del rows[42][column]
    else:
        rows[42][column] = cell
    request = codecs.decode_predict(json.dumps({"model": "m", "instances": rows}).encode())
    fast = outcome(mixed.from_instances, request.instances, booleans=request.booleans)
    assert same(fast, outcome(mixed.from_instances, request.instances, booleans=True))


# ------------------------------------------------------------------------------------ compiled reader
def _served(validator: RowValidator, body: bytes) -> tuple[bool, Any]:
    """(read by serving.number_rows, the answer) as the data plane reads a /predict body."""

    def rows() -> Any:
        request = codecs.read_predict(body, 1088, 16)
        compiled.append(request.matrix is not None)
        if request.matrix is not None:
            return validator.check_matrix(request.matrix)
        return validator.to_matrix(request.inputs, "inputs", request.booleans, request.numbers_only)

    compiled: list[bool] = []
    answer = outcome(rows)
    return bool(compiled and compiled[0]), answer


def _checked(validator: RowValidator, body: bytes) -> Any:
    def rows() -> Any:
        codecs.check_structure(body, 1088, 16)
        return validator.to_matrix(codecs.decode_predict(body).inputs, booleans=True)

    return outcome(rows)


def _body(rows: Any, **envelope: Any) -> bytes:
    return json.dumps({"model": "m", **envelope, "inputs": rows}).encode()


@pytest.mark.parametrize("cell", BAD_CELLS, ids=short)
def test_compiled_reader_answers_as_the_checked_path(numeric, cell):
    validator, rows = numeric
    spoilt = [list(r) for r in rows]
    spoilt[57][3] = cell
    body = _body(spoilt)
    compiled, answer = _served(validator, body)
    assert same(answer, _checked(validator, body))
    if not isinstance(cell, (int, float)) or isinstance(cell, bool) or abs(cell) > 1.8e308:
        assert not compiled, "only numbers within float64 are read by the compiled reader"


SHAPES: dict[str, Any] = {
    "plain": lambda rows: _body(rows),
    "version": lambda rows: _body(rows, version=1),
    "version 0": lambda rows: _body(rows, version=0),
    "version true": lambda rows: _body(rows, version=True),
    "explain": lambda rows: _body(rows, explain=True),
    "extra key": lambda rows: _body(rows, extra=1),
    "other model": lambda rows: _body(rows, model="m[1]"),
    "empty model": lambda rows: _body(rows, model=""),
    "escaped model": lambda rows: _body(rows, model='a"b'),
    "duplicate key": lambda rows: _body(rows).replace(b'"model": "m"', b'"model": "m", "model": "n"'),
    "leading space": lambda rows: b" " + _body(rows),
    "byte order mark": lambda rows: b"\xef\xbb\xbf" + _body(rows),
    "trailing data": lambda rows: _body(rows) + b"x",
    "no inputs": lambda rows: _body(rows).replace(b'"inputs"', b'"instances"'),
    "wrong width": lambda rows: _body([r[:-1] for r in rows]),
    "short row": lambda rows: _body([*rows[:10], rows[10][:-1], *rows[11:]]),
    "nested cell": lambda rows: _body([*rows[:10], [[rows[10][0]], *rows[10][1:]], *rows[11:]]),
    "nested row": lambda rows: _body([*rows[:10], [rows[10]], *rows[11:]]),
    "empty row": lambda rows: _body([*rows[:10], [], *rows[11:]]),
    "flat number row": lambda rows: _body([*rows[:10], 1.0, *rows[11:]]),
    "object row": lambda rows: _body([*rows[:10], {"x": 1}, *rows[11:]]),
    "flat rows": lambda rows: _body([v for r in rows for v in r]),
    "too many rows": lambda rows: _body((rows * 30)[:1100]),
    "truncated": lambda rows: _body(rows)[:-2],
    "NaN": lambda rows: _body(rows).replace(b", ", b", NaN, ", 1),
    "invalid UTF-8": lambda rows: _body(rows, model="m\u00e9").replace("é".encode(), b"\xe9"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_compiled_reader_declines_what_it_does_not_read_plainly(numeric, shape):
    validator, rows = numeric
    body = SHAPES[shape](rows)
    compiled, answer = _served(validator, body)
    assert same(answer, _checked(validator, body)), shape
    assert compiled is (shape in {"plain", "version", "other model", "wrong width"}), shape
    if shape == "wrong width":
        assert answer[0] == "refused" and answer[1] == "feature_count"


def test_compiled_reader_agrees_with_the_checked_path_on_mutated_bodies(numeric):
    """3,000 bodies, each a plain 40-row body with one to three random byte edits (seeded): the compiled
    reader either declines or gives exactly what the checked path gives; a refusal is the same refusal.
    (About 550 of them are still read by it: edits inside numbers.)"""
    validator, rows = numeric
    plain = _body(rows[:40])
    alphabet = b'[]{},:"\\-+0123456789eE. tfnaulrs\xff\x00'
    rng = np.random.default_rng(20261201)
    read = 0
    for _ in range(3000):
        body = bytearray(plain)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(body)))
            action = rng.integers(0, 4)
            if action == 0:
                body[at] = alphabet[int(rng.integers(0, len(alphabet)))]
            elif action == 1:
                body.insert(at, alphabet[int(rng.integers(0, len(alphabet)))])
            elif action == 2:
                del body[at]
            else:
                body = body[: max(at, 1)]
        compiled, answer = _served(validator, bytes(body))
        assert same(answer, _checked(validator, bytes(body))), bytes(body)[:120]
        read += compiled
    assert read > 300, "most edits inside numbers keep a body the compiled reader reads"
