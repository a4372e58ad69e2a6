"""``weights.pt``: a fitted MLP's weights in the bundle, and reading them back from a file nobody vouches for.

The file is ``torch.save`` of a plain dict (no pickled classes)::

    {"format": "lockgate-mlp-weights", "format_version": 1, "n_features": F,
     "hidden_layer_sizes": [...], "activation": "relu", "batch_norm": False, "dropout": 0.0,
     "sigmoid_head": False, "classes": [...], "state_dict": {name: tensor}}

:func:`read_weights` treats it as hostile: the size is checked before a byte is parsed
(:data:`~cascade_registry.artifacts.MAX_WEIGHTS_BYTES`), it is parsed with ``torch.load(weights_only=True)``
(tensors and plain containers only, never code), every field is type- and range-checked, the declared
network is bounded (:data:`MAX_PARAMETERS`) and built, and the tensors must load into it *strictly*
(same names, same shapes) and be finite.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cascade_registry.artifacts import MAX_WEIGHTS_BYTES, WEIGHTS_FILE
from training.deep.errors import DeepConfigError
from training.deep.network import ACTIVATIONS, build_network

__all__ = [
    "FORMAT", "MAX_PARAMETERS", "WEIGHTS_FILE", "ParentWeights", "linear_layers", "read_weights",
    "weights_bytes",
]

FORMAT, FORMAT_VERSION = "lockgate-mlp-weights", 1
#: the most parameters a declared parent network may have (64 MiB of float32 is 16.7 M)
MAX_PARAMETERS = 16 * 2**20
MAX_LAYERS, MAX_UNITS, MAX_FEATURES, MAX_CLASSES = 32, 8192, 100_000, 10_000


@dataclass(frozen=True)
class ParentWeights:
    """A validated parent: its architecture and its network (standardization buffers included)."""

    n_features: int
    hidden_layer_sizes: tuple[int, ...]
    activation: str
    batch_norm: bool
    sigmoid_head: bool
    classes: tuple[str, ...]
    dropout: float
    state_dict: dict[str, torch.Tensor]
    sha256: str

    def network(self) -> nn.Module:
        """The parent network (``body`` + standardization buffers) with its weights loaded."""
        n_out = 1 if self.sigmoid_head else len(self.classes)
        holder = _Holder(build_network(self.n_features, n_out, self.hidden_layer_sizes, self.activation,
                                       self.dropout, self.batch_norm), self.n_features)
        holder.load_state_dict(self.state_dict, strict=True)
        return holder


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``module`` in order (the hidden layers, then the output layer)."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def weights_bytes(mlp: Any) -> bytes:
    """The ``weights.pt`` bytes of a fitted :class:`~training.deep.estimator.MLPClassifier`."""
    state = {k: v.detach().to("cpu").clone() for k, v in mlp.network_.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "n_features": int(mlp.n_features_in_),
        "hidden_layer_sizes": [int(u) for u in mlp.hidden_layer_sizes],
        "activation": str(mlp.activation),
        "batch_norm": bool(mlp.batch_norm),
        "dropout": float(mlp.dropout),
        "sigmoid_head": bool(mlp.sigmoid_head_),
        "classes": [str(c) for c in mlp.classes_],
        "state_dict": state,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def _bad(path_label: str, problem: str) -> DeepConfigError:
    return DeepConfigError(
        "init_from", path_label, f"a weights.pt written by 'lockgate train --model mlp' ({problem})",
        "pass a bundle trained with --model mlp, its weights.pt, or a registered NAME:VERSION of one",
    )


def read_weights(path: Path | str, label: str = "the parent") -> ParentWeights:
    """Read and validate ``path``; ``label`` names it in errors (never the full path: it may be private)."""
    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file():
            raise _bad(label, "no regular file weights.pt")
        size = path.stat().st_size
        if size > MAX_WEIGHTS_BYTES:
            raise _bad(label, f"{size} bytes, more than the limit of {MAX_WEIGHTS_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except OSError as e:
        raise _bad(label, f"unreadable: {e.strerror or type(e).__name__}") from None
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise _bad(label, f"not a plain torch weights file: {type(e).__name__}") from None
    return _validate(raw, label, hashlib.sha256(data).hexdigest())


def _field(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], label: str) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise _bad(label, f"field {key!r} missing or of the wrong type")
    return value


def _validate(raw: Any, label: str, sha256: str) -> ParentWeights:
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _bad(label, "not the lockgate MLP weights format")
    if raw.get("format_version") != FORMAT_VERSION:
        raise _bad(label, f"format_version {str(raw.get('format_version'))[:16]!r}, this lockgate reads "
                          f"{FORMAT_VERSION}")
    n_features = _field(raw, "n_features", int, label)
    sizes = _field(raw, "hidden_layer_sizes", list, label)
    classes = _field(raw, "classes", list, label)
    activation = _field(raw, "activation", str, label)
    state = _field(raw, "state_dict", dict, label)
    if not 1 <= n_features <= MAX_FEATURES or not 1 <= len(sizes) <= MAX_LAYERS:
        raise _bad(label, "input width or depth out of range")
    if not all(isinstance(u, int) and not isinstance(u, bool) and 1 <= u <= MAX_UNITS for u in sizes):
        raise _bad(label, f"hidden_layer_sizes must be 1..{MAX_LAYERS} integers in 1..{MAX_UNITS}")
    if not 2 <= len(classes) <= MAX_CLASSES or not all(isinstance(c, str) for c in classes):
        raise _bad(label, "classes must be 2 or more strings")
    if activation not in ACTIVATIONS:
        raise _bad(label, f"unknown activation {activation[:32]!r}")
    sigmoid = bool(_field(raw, "sigmoid_head", bool, label))
    n_out = 1 if sigmoid else len(classes)
    widths = [n_features, *sizes, n_out]
    if sum(a * b + b for a, b in zip(widths, widths[1:], strict=False)) > MAX_PARAMETERS:
        raise _bad(label, f"more than {MAX_PARAMETERS} parameters")
    batch_norm = bool(_field(raw, "batch_norm", bool, label))
    dropout = _field(raw, "dropout", float, label)
    if not 0.0 <= dropout < 1.0:
        raise _bad(label, "dropout out of [0, 1)")
    body = build_network(n_features, n_out, tuple(sizes), activation, dropout, batch_norm)
    network = _Holder(body, n_features)
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).splitlines()[0][:160]
        raise _bad(label, f"its tensors do not fit the declared network: {first}") from None
    if not all(bool(torch.isfinite(t).all()) for t in network.state_dict().values() if t.is_floating_point()):
        raise _bad(label, "non-finite weights")
    return ParentWeights(
        n_features=n_features, hidden_layer_sizes=tuple(sizes), activation=activation, batch_norm=batch_norm,
        dropout=dropout, sigmoid_head=sigmoid, classes=tuple(classes), state_dict=network.state_dict(),
        sha256=sha256,
    )


class _Holder(nn.Module):
    """The shape of :class:`~training.deep.estimator.ScoringNetwork`'s state: ``mean``, ``scale``,
    ``body``."""

    def __init__(self, body: nn.Sequential, n_features: int) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
