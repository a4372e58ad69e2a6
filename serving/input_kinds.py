"""Images and token sequences in ``/predict`` instances -> the numeric columns the graph reads.

A card's ``inputs`` (:class:`cascade_registry.artifacts.InputSpec`) say which ``card.features`` columns an
image or a sequence fills. An instance may carry, under the input's name,

- an image: a nested list ``H x W`` (one channel) or ``H x W x C`` of numbers inside the card's
  ``value_range``, or a base64 PNG (optionally a ``data:image/png;base64,`` URL) of exactly ``W x H``
  pixels; the PNG's size is read from its header before anything is decoded, the text is bounded
  (:data:`MAX_PNG_BYTES`), and 8-bit values are scaled from 0..255 to ``value_range``;
- a sequence: a list of token strings, or one string split on whitespace (the card's tokenizer); at
  least ``min_length`` and at most ``max_length`` tokens. Token ``vocabulary[i]`` becomes id ``i + 2``,
  the ids are left-padded with ``0``; a token outside the vocabulary becomes id ``1`` with a warning
  (``unknown = "unk"``) or is refused (``unknown = "error"``).

Everything wrong is an :class:`InvalidInputError` (422) naming the row and what the model takes. The
instance then goes on as if it had sent the columns one by one (:class:`serving.columns.TableSchema`).
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from cascade_registry.artifacts import PAD_ID, UNKNOWN_ID, InputSpec, ModelCard

from .columns import describe_value
from .errors import InvalidInputError

__all__ = ["MAX_PNG_BYTES", "InputKinds"]

#: the largest PNG (decoded from base64) one image may be; an 8x8 grayscale PNG is about 100 bytes
MAX_PNG_BYTES = 64 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DATA_URL = "data:image/png;base64,"
_NUMBERS = frozenset({int, float})
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
#: a text longer than this many characters per allowed token is refused before it is split
_MAX_TOKEN_CHARS = 64


def _bad(message: str, fix: str, code: str) -> InvalidInputError:
    return InvalidInputError(message, fix, code=code)


class _Image:
    def __init__(self, spec: InputSpec) -> None:
        self.name = spec.name
        self.h, self.w, self.c = spec.shape or (0, 0, 0)
        self.low, self.high = spec.value_range or (0.0, 1.0)
        self.size = f"{self.h}x{self.w}" + ("" if self.c == 1 else f"x{self.c}")
        self.fix = (f"send {self.name!r} as a nested list of {self.h} rows of {self.w} numbers in "
                    f"[{self.low:g}, {self.high:g}]" + ("" if self.c == 1 else f" (each a list of {self.c})")
                    + f", or a base64 PNG of {self.w}x{self.h} pixels")

    def values(self, value: Any, where: str) -> tuple[list[float], list[str]]:
        if type(value) is str:
            return self._png(value, where), []
        if type(value) is not list:
            raise _bad(f"{where} is {describe_value(value)}, expected an image", self.fix, "wrong_kind")
        shape_ok = len(value) == self.h and all(type(r) is list and len(r) == self.w for r in value)
        if shape_ok and self.c > 1:
            shape_ok = all(type(p) is list and len(p) == self.c for r in value for p in r)
        if not shape_ok:
            raise _bad(f"{where} is not a {self.size} image ({self._shape_of(value)})", self.fix,
                       "image_size")
        pixels = [v for r in value for v in r] if self.c == 1 else [v for r in value for p in r for v in p]
        if not set(map(type, pixels)) <= _NUMBERS:
            bad = next(v for v in pixels if type(v) not in _NUMBERS)
            raise _bad(f"{where} holds {describe_value(bad)}; every pixel must be a number", self.fix,
                       "not_a_number")
        low, high = min(pixels), max(pixels)
        if low < self.low or high > self.high:
            raise _bad(f"{where} has pixel values in [{low:g}, {high:g}], outside the model's "
                       f"[{self.low:g}, {self.high:g}]", self.fix, "pixel_range")
        return [float(v) for v in pixels], []

    def _shape_of(self, value: list) -> str:
        widths = sorted({len(r) for r in value if type(r) is list})
        if not value or not widths:
            return f"{len(value)} values" if value else "empty"
        return f"{len(value)} rows of {'/'.join(map(str, widths[:3]))} values"

    def _png(self, text: str, where: str) -> list[float]:
        text = text.removeprefix(_DATA_URL)
        if len(text) > 4 * (MAX_PNG_BYTES // 3 + 1):
            raise _bad(f"{where} is a {len(text)}-character string; an image may be at most {MAX_PNG_BYTES} "
                       "bytes of PNG", self.fix, "image_too_large")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"{where} is a string but not base64", self.fix, "not_an_image") from None
        if not data.startswith(_PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
            raise _bad(f"{where} is base64 but not a PNG image", self.fix, "not_an_image")
        width, height = struct.unpack(">II", data[16:24])
        if (width, height) != (self.w, self.h):
            raise _bad(f"{where} is a {width}x{height} PNG; this model takes {self.w}x{self.h} images",
                       self.fix, "image_size")
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
                im.load()
                pixels = np.asarray(im.convert(_MODES.get(self.c, "L")), dtype=np.float64)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise _bad(f"{where} is a damaged PNG", self.fix, "not_an_image") from None
        return (self.low + pixels.reshape(-1) / 255.0 * (self.high - self.low)).tolist()


class _Sequence:
    def __init__(self, spec: InputSpec) -> None:
        self.name = spec.name
        self.max = int(spec.max_length or len(spec.columns))
        self.min = spec.min_length
        self.ids = {t: i + 2 for i, t in enumerate(spec.vocabulary)}
        self.unknown = spec.unknown
        self.fix = (f"send {self.name!r} as a list of {self.min} to {self.max} tokens (strings), or one "
                    "string of tokens separated by spaces")

    def values(self, value: Any, where: str) -> tuple[list[float], list[str]]:
        if type(value) is str and len(value) > _MAX_TOKEN_CHARS * (self.max + 1):
            raise _bad(f"{where} is a {len(value)}-character text; this model reads at most {self.max} "
                       "tokens", self.fix, "sequence_too_long")
        tokens = value.split() if type(value) is str else value
        if type(tokens) is not list:
            raise _bad(f"{where} is {describe_value(value)}, expected a token sequence", self.fix,
                       "wrong_kind")
        if len(tokens) < self.min:
            raise _bad(f"{where} is an empty sequence" if not tokens else
                       f"{where} has {len(tokens)} tokens; this model needs at least {self.min}", self.fix,
                       "empty_sequence")
        if len(tokens) > self.max:
            raise _bad(f"{where} has {len(tokens)} tokens; this model reads at most {self.max}", self.fix,
                       "sequence_too_long")
        if set(map(type, tokens)) != {str}:
            bad = next(t for t in tokens if type(t) is not str)
            raise _bad(f"{where} holds {describe_value(bad)}; every token must be a string", self.fix,
                       "wrong_kind")
        ids = [self.ids.get(t, UNKNOWN_ID) for t in tokens]
        notes = []
        if UNKNOWN_ID in ids:
            unknown = [t for t in tokens if t not in self.ids]
            shown = ", ".join(describe_value(t) for t in unknown[:5])
            if self.unknown == "error":
                raise _bad(f"{where} holds tokens outside the model's vocabulary: {shown}",
                           f"send only tokens of the card's vocabulary ({len(self.ids)} tokens)",
                           "unknown_token")
            notes.append(f"{self.name}: {len(unknown)} token(s) outside the vocabulary ({shown}) read as the "
                         "unknown token")
        return [float(PAD_ID)] * (self.max - len(ids)) + [float(i) for i in ids], notes


class InputKinds:
    """The image and sequence inputs of one card; :meth:`expand` rewrites instances into columns."""

    def __init__(self, card: ModelCard) -> None:
        specs = [s for s in getattr(card, "inputs", []) if s.kind in ("image", "sequence")]
        self.decoders = [(s, _Image(s) if s.kind == "image" else _Sequence(s)) for s in specs]
        self.names = frozenset(s.name for s in specs)

    def __bool__(self) -> bool:
        return bool(self.decoders)

    def expand(self, rows: list[dict[str, Any]], where: str
               ) -> tuple[list[dict[str, Any]], list[list[str]] | None]:
        """Each row with an image or sequence under its input's name -> the row with that input's columns
        instead; per-row notes (unknown tokens) or None."""
        out, notes = [], None
        for i, row in enumerate(rows):
            if self.names.isdisjoint(row):
                out.append(row)
                continue
            row = dict(row)
            for spec, decoder in self.decoders:
                if spec.name not in row:
                    continue
                values, said = decoder.values(row.pop(spec.name), f"{where}[{i}].{spec.name}")
                if not set(spec.columns).isdisjoint(row):
                    raise _bad(f"{where}[{i}] sends {spec.name!r} and some of its columns too",
                               f"send either {spec.name!r} or its columns {spec.columns[:2]}..., not both",
                               "duplicate_input")
                row.update(zip(spec.columns, values, strict=True))
                if said:
                    notes = notes or [[] for _ in rows]
                    notes[i].extend(said)
            out.append(row)
        return out, notes
