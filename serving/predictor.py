"""``OnnxPredictor``: one gated bundle behind ONNX Runtime — load, predict, a ready flag. No BentoML here.

Like an MLServer runtime: it never parses payloads (the codecs and the validator hand it a float32
matrix) and knows nothing of HTTP. Loading refuses any bundle whose ``gate.json`` is not a passing
:class:`GateReport` bound to the sha256 of the ``model.onnx`` on disk.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from cascade_registry.artifacts import (
    CARD_FILE,
    GATE_FILE,
    InvalidBundleError,
    ModelBundle,
    ModelCard,
    OutputSpec,
)

from .errors import BundleRejectedError, ModelOutputError

__all__ = ["ANSWER_SCHEMA", "OnnxPredictor"]

#: the version of the /predict answer's meaning (described in /openapi.json as ``PredictAnswer``)
ANSWER_SCHEMA = "lockgate.predict/2"
#: card sections a consumer needs; the rest (hyperparameters, search, host, runtime, cost, file
#: sources) stays in the registry for the model's owner
_CONSUMER_CARD = {
    "schema_version": True,
    "ref": True,
    "task": True,
    "family": True,
    "classes": True,
    "features": True,
    "inputs": True,
    "input_policy": True,
    "calibration": True,
    "metrics": True,
    "recommended_threshold": True,
    "upstream": True,
    "how_to_consume": True,
    "created_at": True,
    "dataset": {"name", "description", "rows", "n_features", "target", "segment", "sha256"},
    "export": {"onnx_sha256", "opset", "parity_max_abs_diff", "precision"},
}

log = logging.getLogger("lockgate.serving")


#: the largest card.json / gate.json read (a real one is tens of kB); anything else is refused unread
MAX_JSON_FILE_BYTES = 32 * 1024 * 1024


def check_bundle_files(path: Path) -> None:
    """Refuse, without reading them, a card or gate report that is not a regular file of sane size (a link
    to ``/dev/zero`` would otherwise be read until memory runs out)."""
    for name in (CARD_FILE, GATE_FILE):
        try:
            info = os.stat(path / name)  # follows links: what a read would open
        except FileNotFoundError:
            continue  # reported by ModelBundle.load / _require_gate
        except OSError as e:
            raise BundleRejectedError(
                f"{name} cannot be read: {e.strerror}", "fix the bundle's files", code="bundle_unreadable"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise BundleRejectedError(
                f"{name} is not a regular file",
                "replace it with the file 'lockgate train' or 'check' wrote",
                code="bundle_not_a_file",
            )
        if info.st_size > MAX_JSON_FILE_BYTES:
            raise BundleRejectedError(
                f"{name} is {info.st_size} bytes; the limit is {MAX_JSON_FILE_BYTES}",
                "replace it with the file 'lockgate train' or 'check' wrote",
                code="bundle_too_large",
            )


def _require_gate(path: Path, bundle: ModelBundle) -> None:
    report = bundle.gate_report()
    if report is None:
        raise BundleRejectedError(
            "no readable gate.json", "run 'lockgate check BUNDLE' and serve it once it passes"
        )
    if not report.binds(bundle.onnx_sha256):
        why = "did not pass" if not report.passed else "was made for a different model.onnx"
        raise BundleRejectedError(
            f"the gate report {why} (sha256 on disk {bundle.onnx_sha256[:12]}…)",
            "re-run 'lockgate check BUNDLE'",
        )


class OnnxPredictor:
    """A loaded, gate-checked bundle. Build with :meth:`from_bundle`."""

    def __init__(
        self,
        bundle: ModelBundle,
        session: ort.InferenceSession,
        released_at: datetime | None = None,
        canary: bool = False,
    ) -> None:
        self.bundle = bundle
        self.card: ModelCard = bundle.card
        self.name = bundle.card.ref.name
        self.version = bundle.card.ref.version
        self.sha256 = bundle.onnx_sha256
        self.released_at = released_at
        self.canary = canary
        self.classes: list[str] = list(bundle.card.classes)
        self.feature_names: list[str] = bundle.card.feature_names
        self.n_features = len(self.feature_names)
        self._session = session
        inputs = [i.name for i in session.get_inputs()]
        self._input_name = "input" if "input" in inputs else inputs[0]
        #: the string tensor of categorical/boolean columns (issue 11), None for all-numeric graphs
        self._categorical_name: str | None = "categorical" if "categorical" in inputs else None
        #: multi-output models: the heads after the first (card.outputs[1:]) and their graph outputs
        self.extra_heads: list[OutputSpec] = list(bundle.card.outputs[1:])
        self._extra_outputs: list[str] = [o for h in self.extra_heads for o in h.onnx_outputs]
        self.ready = True
        self.metadata = self._metadata()
        self.answer_prefix, self.explained_prefix = self.prefixes(self.metadata)

    def prefixes(self, metadata: dict[str, Any]) -> tuple[str, str]:
        """The answer's constant part, serialised once: '{"schema":..,"model":{...}', and the same with
        the prose note ("consume") that a request asks for with "explain": true."""
        head = '{"schema":' + json.dumps(ANSWER_SCHEMA) + ',"model":' + json.dumps(metadata, allow_nan=False)
        tail = ',"canary":true' if self.canary else ""
        return head + tail, head + ',"consume":' + json.dumps(self.consume_note()) + tail

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def from_bundle(
        cls,
        path: Path | str,
        released_at: datetime | None = None,
        canary: bool = False,
        intra_op_threads: int = 1,
        card: ModelCard | None = None,
    ) -> OnnxPredictor:
        """Validate the bundle and its gate report, then open an ONNX Runtime session.

        A canary (``lockgate serve --canary``, used by the gate's own ``--serve`` check, before any
        gate report exists) skips the gate-report requirement; its answers are marked ``canary``.
        ``card`` (the registry's stored card) replaces the one read from disk.
        Raises :class:`BundleRejectedError` saying why the bundle may not be served.
        """
        path = Path(path)
        check_bundle_files(path)
        try:
            bundle = ModelBundle.load(path)
            if not canary:
                _require_gate(path, bundle)
        except InvalidBundleError as e:
            raise BundleRejectedError(
                e.problem, e.fix or "rebuild the bundle with 'lockgate train'"
            ) from None
        except RecursionError:
            raise BundleRejectedError(
                "card.json or gate.json is nested too deeply to read",
                "replace it with the file 'lockgate train' or 'check' wrote",
                code="bundle_too_deep",
            ) from None
        if card is not None:  # the card the registry stored at register time is the one served
            bundle = ModelBundle(bundle.path, card, bundle.onnx_sha256)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(bundle.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            log.warning("ONNX Runtime cannot load %s: %s", bundle.model_path, e)
            raise BundleRejectedError(
                f"ONNX Runtime cannot load model.onnx ({type(e).__name__})", "re-export the bundle"
            ) from None
        outputs = [o.name for o in session.get_outputs()]
        heads = [o for h in bundle.card.outputs[1:] for o in h.onnx_outputs]
        if "label" not in outputs or "probabilities" not in outputs or not set(heads) <= set(outputs):
            expected = ", ".join(repr(o) for o in ["label", "probabilities", *heads])
            raise BundleRejectedError(
                f"model.onnx outputs {outputs[:16]}, expected {expected}",
                "re-export the bundle with 'lockgate train'",
            )
        return cls(bundle, session, released_at=released_at, canary=canary)

    def unload(self) -> None:
        self.ready = False

    # ------------------------------------------------------------------------------------ predicting
    def predict(self, x: np.ndarray, categorical: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """float32 ``[N, F]`` (and, for mixed tables, strings ``[N, K]``) -> (class indices int64 ``[N]``,
        probabilities float32 ``[N, C]``)."""
        feeds = {self._input_name: x}
        if self._categorical_name is not None:
            if categorical is None:
                categorical = np.full((x.shape[0], 0), "", dtype=object)
            feeds[self._categorical_name] = categorical
        labels, probabilities = self._session.run(["label", "probabilities"], feeds)
        if not np.isfinite(probabilities).all():
            raise ModelOutputError(
                f"model {self.name}:{self.version} produced non-finite probabilities",
                "this is a model defect; report it and roll back to the previous release",
            )
        return labels, probabilities

    def predict_all(self, x: np.ndarray, categorical: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """(labels, probabilities, then every extra head's outputs in ``card.outputs`` order); a single-head
        model gives :meth:`predict`'s pair."""
        if not self._extra_outputs:
            return self.predict(x, categorical)
        feeds = {self._input_name: x}
        if self._categorical_name is not None:
            feeds[self._categorical_name] = (categorical if categorical is not None
                                             else np.full((x.shape[0], 0), "", dtype=object))
        outs = self._session.run(["label", "probabilities", *self._extra_outputs], feeds)
        if not all(np.isfinite(o).all() for o in outs if o.dtype.kind == "f"):
            raise ModelOutputError(
                f"model {self.name}:{self.version} produced non-finite outputs",
                "this is a model defect; report it and roll back to the previous release",
            )
        return tuple(outs)

    # ------------------------------------------------------------------------------------ metadata
    def _metadata(self) -> dict[str, Any]:
        """The compact model block of every answer (the card's other facts: ``GET /models/{name}``)."""
        card = self.card
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "calibration": card.calibration.method,
            "threshold": card.recommended_threshold,
            "upstream": [],  # the upstream versions actually used: filled in by a composition
            "card_url": f"/models/{self.name}?version={self.version}",
        }

    def consume_note(self) -> str:
        card = self.card
        note = (
            f"probabilities are calibrated ({card.calibration.method}, holdout ECE "
            f"{card.calibration.after.ece:.3f}): read them as frequencies."
        )
        if card.recommended_threshold is not None and len(self.classes) == 2:
            note += (
                f" The card recommends answering {self.classes[1]!r} when P({self.classes[1]}) >= "
                f"{card.recommended_threshold:g}."
            )
        else:
            note += " Take the label, or act on the class probabilities with your own costs."
        return note + " " + card.how_to_consume

    def describe(self, metadata: dict[str, Any] | None = None, raw: set[str] | None = None) -> dict[str, Any]:
        """What a consumer needs to read the answers, for ``GET /models/{name}`` (no file paths, no
        hyperparameters, no host or library details). A composed model passes its model block and the
        ``raw`` columns its callers send (the others come from its upstream models)."""
        features = [f for f in self.card.features if raw is None or f.name in raw]
        return {
            "model": self.metadata if metadata is None else metadata,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "classes": self.classes,
            "consume": self.consume_note(),
            "card": json.loads(self.card.model_dump_json(include=_CONSUMER_CARD | (
                {"outputs": True} if self.card.outputs else {}))),
            "inputs": {
                "features": [f.name for f in features],
                "columns": [
                    {
                        "name": f.name,
                        "kind": getattr(f, "kind", "numeric"),
                        "levels": list(getattr(f, "levels", [])),
                        "missing_allowed": getattr(f, "missing", "error") != "error",
                        "unknown": getattr(f, "unknown", "other"),
                    }
                    for f in features
                ],
                "send": "instances" if self._categorical_name is not None else "inputs or instances",
                "policy": self.card.input_policy.model_dump(),
            },
        }
