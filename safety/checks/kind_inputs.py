"""Bad inputs for images and token sequences (``card.inputs``): the gate's fuzzing of the new input kinds.

Two levels, as for tables:

- :func:`kind_cases` — arrays for the sandboxed ``inputs`` check: the columns of an image or a sequence
  set to what the edge may pass on (all-black / all-white images, pixels far beyond the value range sent
  as plain columns, every token unknown, a full-length sequence) must get a valid answer; what the edge
  never sends (an all-padding = empty sequence, ids outside the vocabulary, fractional ids) is run as a
  probe: only a crash or a hang fails.
- :func:`kind_probes` — requests for the ``serve`` check: an image as a nested list and as a PNG
  (canaries: 200), a wrong-size list and PNG, a non-image string, an empty sequence, one token too many,
  unknown tokens and non-string tokens: each a valid 2xx answer or a clean 4xx, never a 5xx.

The PNG is written here with zlib (stdlib): the gate needs no imaging library.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from cascade_registry.artifacts import PAD_ID, UNKNOWN_ID, InputSpec, ModelCard

__all__ = ["kind_cases", "kind_probes", "png_bytes"]

_JSON = "application/json"


def _specs(card: ModelCard) -> list[InputSpec]:
    return [s for s in getattr(card, "inputs", []) if s.kind in ("image", "sequence")]


def _positions(card: ModelCard, spec: InputSpec) -> np.ndarray:
    where = {f.name: i for i, f in enumerate(card.numeric_features)}
    return np.array([where[c] for c in spec.columns], dtype=np.int64)


def kind_cases(card: ModelCard, base: np.ndarray, dtype: Any, make: Callable[..., Any]) -> list[Any]:
    """``make(id, array, rejected_by, probe)`` per case (an :class:`safety.checks.inputs.InputCase`)."""
    cases = []
    for spec in _specs(card):
        cols = _positions(card, spec)

        def put(value: Any, cols: np.ndarray = cols) -> np.ndarray:
            x = base.copy()
            x[:, cols] = value
            return x.astype(dtype)

        if spec.kind == "image":
            low, high = spec.value_range or (0.0, 1.0)
            cases += [
                make(f"{spec.name}_black", put(low), None, False),
                make(f"{spec.name}_white", put(high), None, False),
                make(f"{spec.name}_beyond_value_range", put(high + 1000 * (high - low + 1)), None, False),
            ]
            continue
        top = len(spec.vocabulary) + 1
        unknown_edge = "card.inputs[].unknown = error" if spec.unknown == "error" else None
        never = "the serving edge (card.inputs: token ids come from the vocabulary)"
        cases += [
            make(f"{spec.name}_all_unknown_tokens", put(float(UNKNOWN_ID)), unknown_edge, False),
            make(f"{spec.name}_full_length", put(float(top)), None, False),
            make(f"{spec.name}_empty_sequence", put(float(PAD_ID)),
                 f"the serving edge (card.inputs[].min_length = {spec.min_length})", True),
            make(f"{spec.name}_ids_beyond_vocabulary", put(float(top + 1000)), never, True),
            make(f"{spec.name}_negative_ids", put(-3.0), never, True),
            make(f"{spec.name}_fractional_ids", put(2.5), never, True),
        ]
    return cases


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of ``pixels`` (uint8 [H, W])."""
    h, w = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", binascii.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(row) for row in pixels.astype(np.uint8).tolist())
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _instance(card: ModelCard, row: list[float], specs: list[InputSpec]) -> dict[str, Any]:
    """A valid row sent the way a caller would: each image or sequence under its name, the rest by column."""
    names = [f.name for f in card.numeric_features]
    values = dict(zip(names, row, strict=True))
    out: dict[str, Any] = {}
    for spec in specs:
        cols = [values.pop(c) for c in spec.columns]
        if spec.kind == "image":
            h, w, c = spec.shape or (1, len(cols), 1)
            out[spec.name] = np.asarray(cols).reshape((h, w) if c == 1 else (h, w, c)).tolist()
        else:
            vocab = spec.vocabulary
            tokens = [vocab[int(i) - 2] for i in cols if 2 <= int(i) < len(vocab) + 2]
            out[spec.name] = tokens or vocab[:1]
    return {**values, **out}


def kind_probes(card: ModelCard, rows: list[list[float]]) -> list[tuple[str, str, Any, str]]:
    """(name, kind, body, content type) per request, as :func:`safety.checks.serve.serve_probes`."""
    specs = _specs(card)
    if not specs:
        return []
    name, first = card.ref.name, _instance(card, rows[0], specs)

    def body(**change: Any) -> dict[str, Any]:
        return {"model": name, "instances": [first | change]}

    every = [_instance(card, r, specs) for r in rows]
    probes: list[tuple[str, str, Any, str]] = [
        ("canary_kinds", "canary", {"model": name, "instances": every}, _JSON)]
    for spec in specs:
        n = spec.name
        if spec.kind == "image":
            h, w, _ = spec.shape or (1, 1, 1)
            low, high = spec.value_range or (0.0, 1.0)
            scaled = (np.asarray(first[n], dtype=np.float64).reshape(h, w, -1)[:, :, 0] - low) / (high - low)
            png = base64.b64encode(png_bytes(np.round(np.clip(scaled, 0, 1) * 255))).decode()
            probes += [
                (f"{n}_png", "canary", body(**{n: png}), _JSON),
                (f"{n}_wrong_size", "bad", body(**{n: first[n][:-1]}), _JSON),
                (f"{n}_png_wrong_size", "bad",
                 body(**{n: base64.b64encode(png_bytes(np.zeros((h + 1, w + 1)))).decode()}), _JSON),
                (f"{n}_not_an_image", "bad", body(**{n: base64.b64encode(b"GIF89a" * 8).decode()}), _JSON),
                (f"{n}_huge_string", "bad", body(**{n: "A" * 200_000}), _JSON),
            ]
            continue
        longest = spec.max_length or len(spec.columns)
        probes += [
            (f"{n}_empty_sequence", "bad", body(**{n: []}), _JSON),
            (f"{n}_over_long_sequence", "bad", body(**{n: spec.vocabulary[:1] * (longest + 1)}), _JSON),
            (f"{n}_unknown_tokens", "bad", body(**{n: ["__not_a_token__"] * 3}), _JSON),
            (f"{n}_tokens_not_strings", "bad", body(**{n: [1, 2, 3]}), _JSON),
            (f"{n}_text", "bad", body(**{n: " ".join(spec.vocabulary[:3])}), _JSON),
        ]
    return probes
