"""What the checks of one gate run share: the bundle's paths, its card, its reference data, the sandbox.

The context never parses or executes the ONNX file in this process: :meth:`GateContext.inspection` and
:meth:`GateContext.run_model` go through :mod:`safety.sandbox`.
"""

from __future__ import annotations

import dataclasses
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cascade_registry.artifacts import (
    CARD_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    CheckResult,
    InvalidBundleError,
    ModelBundle,
    ModelCard,
)
from safety.errors import ReferenceDataError
from safety.isolation import Isolation
from safety.policy import GatePolicy
from safety.sandbox import SandboxCase, SandboxLimits, SandboxRun, run_job

__all__ = ["GateContext", "Reference"]

#: reference.npz may not decompress to more than this (a zip bomb would otherwise fill the gate's memory)
MAX_REFERENCE_MB = 1024
#: the largest batch the gate builds, in values (rows x features)
MAX_BATCH_CELLS = 50_000_000


def read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, without pickle and refusing zip bombs and non-regular files."""
    try:
        st = path.lstat()
    except OSError as e:
        raise ReferenceDataError(f"{what} cannot be read: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ReferenceDataError(f"{what} is not a regular file (a link, device or directory)")
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (OSError, zipfile.BadZipFile) as e:
        raise ReferenceDataError(f"{what} is not an .npz archive: {e}") from None
    if total > MAX_REFERENCE_MB * 1024 * 1024:
        raise ReferenceDataError(f"{what} unpacks to {total / 2**20:.0f} MB (> {MAX_REFERENCE_MB} MB)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ReferenceDataError(f"{what} cannot be read without pickle: {e}") from None


@dataclass(frozen=True)
class Reference:
    """The arrays of reference.npz, validated against the card."""

    inputs: np.ndarray
    probabilities: np.ndarray
    holdout_inputs: np.ndarray
    holdout_labels: np.ndarray
    holdout_segments: np.ndarray | None
    categorical: np.ndarray | None = None  # str [n, n_categorical] beside ``inputs`` (mixed-type models)
    holdout_categorical: np.ndarray | None = None


class GateContext:
    """Shared, lazily computed state of one gate run."""

    def __init__(
        self,
        bundle: Path,
        policy: GatePolicy,
        *,
        registry_url: str | None = None,
        serve: bool = False,
        holdout: Path | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.bundle = bundle
        self.policy = policy
        self.registry_url = registry_url
        self.serve = serve
        #: a held-out .npz the gate was given (replaces reference.npz's held-out split for scoring)
        self.holdout_path = holdout
        self.isolation = isolation or Isolation.detect()
        self.model_path = bundle / MODEL_FILE
        self.started = time.monotonic()
        self.deadline = self.started + policy.budget_seconds
        self.results: dict[str, CheckResult] = {}
        #: checks skipped because a prerequisite did not pass (the gate fails)
        self.blocked: set[str] = set()
        self.loaded: dict[str, Any] | None = None  # the worker's "loaded" event (inputs/outputs metadata)
        self._card: ModelCard | None = None
        self._card_error: str | None = None
        self._inspection: SandboxRun | None = None
        self._reference: Reference | ReferenceDataError | None = None
        self._reference_run: SandboxRun | None = None
        self._reference_extra: set[str] = set()
        #: runs a check made ahead for a later one (load scores the contract's rows in its session)
        self.prefetched: dict[str, SandboxRun] = {}
        self._read_card()

    # ------------------------------------------------------------------ card
    def _read_card(self) -> None:
        try:
            self._card = ModelBundle.read_card(self.bundle)
        except InvalidBundleError as e:
            self._card_error = e.problem + (f" ({e.fix})" if e.fix else "")

    @property
    def card(self) -> ModelCard:
        """The card; only called by checks that require ``card.schema`` (which passed)."""
        if self._card is None:
            raise ReferenceDataError(f"{CARD_FILE} is not usable: {self._card_error}")
        return self._card

    @property
    def card_or_none(self) -> ModelCard | None:
        return self._card

    @property
    def card_error(self) -> str | None:
        return self._card_error

    # ------------------------------------------------------------------ budget and sandbox
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def limits(self) -> SandboxLimits:
        sandbox = self.policy.sandbox
        wall = max(0.5, min(sandbox.wall_seconds, self.remaining()))
        return SandboxLimits(
            sandbox.memory_mb, sandbox.cpu_seconds, wall, sandbox.threads, isolation=self.isolation
        )

    def inspection(self) -> SandboxRun:
        """Parse the model in the sandbox (external data never loaded); cached."""
        if self._inspection is None:
            self._inspection = run_job(
                {"op": "inspect", "model": str(self.model_path), "checker": "auto"}, self.limits()
            )
        return self._inspection

    def run_checker(self) -> SandboxRun:
        """``onnx.checker`` full check in the sandbox (only after external data was judged safe).

        Without external data the inspection already ran it; that result is reused."""
        if self.inspection().first("checked") is not None:
            return self.inspection()
        mode = "path" if self.policy.file.allow_external_data else "proto"
        return run_job({"op": "inspect", "model": str(self.model_path), "checker": mode}, self.limits())

    def reference_run(self, extra: list[SandboxCase] | None = None) -> SandboxRun | None:
        """One sandboxed session scoring reference.npz's parity inputs (case ``parity``), the held-out rows
        (case ``holdout``) and, when the first caller gives them, ``extra`` cases after those; cached, so
        parity, quality and determinism share one worker. None when ``extra`` was asked for too late."""
        if self._reference_run is None:
            ref = self.reference()
            dtype = self.input_dtype()
            cases = [
                SandboxCase("parity", ref.inputs.astype(dtype), categorical=ref.categorical),
                SandboxCase("holdout", ref.holdout_inputs.astype(dtype), categorical=ref.holdout_categorical),
            ]
            self._reference_run = self.run_model(cases + list(extra or []))
            self._reference_extra = {c.id for c in extra or []}
        elif extra and not {c.id for c in extra} <= self._reference_extra:
            return None
        return self._reference_run

    def run_model(self, cases: list[SandboxCase], model_path: Path | None = None) -> SandboxRun:
        """Create a session in the sandbox and run ``cases`` in it.

        For a model with categorical columns, a case without its own ``categorical`` batch gets valid
        strings aligned with :meth:`valid_rows` (so every check feeds both graph inputs from the card)."""
        if self._card is not None and self._card.categorical_features:
            cases = [c if c.categorical is not None
                     else dataclasses.replace(c, categorical=self.valid_categorical(len(c.array)))
                     for c in cases]
        return run_job({"op": "run", "model": str(model_path or self.model_path)}, self.limits(), cases)

    # ------------------------------------------------------------------ data for the checks
    def n_features(self) -> int:
        """The width of the graph input ``input`` (the card's numeric columns)."""
        return len(self.card.numeric_features)

    def max_batch_rows(self) -> int:
        """The card's largest batch, capped so a hostile card cannot make the gate allocate without bound
        (``resources.max_batch_rows_limit`` and at most ``MAX_BATCH_CELLS`` values)."""
        width = max(1, len(self.card.features))
        cap = min(self.policy.resources.max_batch_rows_limit, max(1, MAX_BATCH_CELLS // width))
        return min(self.card.input_policy.max_batch_rows, cap)

    def input_dtype(self) -> type[np.floating[Any]]:
        loaded = self.loaded or {}
        inputs = loaded.get("inputs") or [{}]
        return np.float64 if inputs[0].get("type") == "tensor(double)" else np.float32

    def valid_rows(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` plausible rows: reference inputs when readable (tiled), else uniform in the card's ranges."""
        ref = self.reference_or_none()
        if ref is not None and len(ref.inputs):
            idx = np.arange(n) % len(ref.inputs)
            return np.ascontiguousarray(ref.inputs[idx]).astype(self.input_dtype())
        low = np.array([f.min or 0.0 for f in self.card.numeric_features], dtype=np.float64)
        high = np.array([f.max or 0.0 for f in self.card.numeric_features], dtype=np.float64)
        rng = np.random.default_rng(seed)
        return (low + rng.random((n, len(low))) * (high - low)).astype(self.input_dtype())

    def valid_categorical(self, n: int) -> np.ndarray:
        """``n`` rows of valid strings for ``categorical``, aligned with :meth:`valid_rows` (reference rows
        tiled), else each column's first kept level."""
        ref = self.reference_or_none()
        if ref is not None and ref.categorical is not None and len(ref.categorical):
            return np.ascontiguousarray(ref.categorical[np.arange(n) % len(ref.categorical)])
        first = [(f.levels or [""])[0] for f in self.card.categorical_features]
        return np.array([first] * n, dtype=str).reshape(n, len(first))

    def reference(self) -> Reference:
        """The validated reference data; raises :class:`ReferenceDataError` with a readable reason."""
        if self._reference is None:
            try:
                self._reference = self._load_reference()
            except ReferenceDataError as e:
                self._reference = e
        if isinstance(self._reference, ReferenceDataError):
            raise self._reference
        return self._reference

    def reference_or_none(self) -> Reference | None:
        try:
            return self.reference()
        except ReferenceDataError:
            return None

    def _load_reference(self) -> Reference:
        path = self.bundle / REFERENCE_FILE
        if not path.is_file() or path.is_symlink():
            raise ReferenceDataError(f"{REFERENCE_FILE} is missing (training writes it next to model.onnx)")
        arrays = read_npz(path, REFERENCE_FILE)
        missing = {"inputs", "probabilities", "holdout_inputs", "holdout_labels"} - arrays.keys()
        if missing:
            raise ReferenceDataError(f"{REFERENCE_FILE} lacks {sorted(missing)} (has {sorted(arrays)})")
        if self.holdout_path is not None:
            arrays = {k: v for k, v in arrays.items() if not k.startswith("holdout_")}
            given = read_npz(self.holdout_path, f"--holdout {self.holdout_path.name}")
            if not {"holdout_inputs", "holdout_labels"} <= given.keys():
                raise ReferenceDataError(
                    f"--holdout {self.holdout_path.name} lacks holdout_inputs/holdout_labels "
                    f"(has {sorted(given)})"
                )
            arrays.update({k: v for k, v in given.items() if k.startswith("holdout_")})
        card = self.card
        n_features, n_classes = len(card.numeric_features), len(card.classes)
        inputs, probs = arrays["inputs"], arrays["probabilities"]
        h_inputs, h_labels = arrays["holdout_inputs"], arrays["holdout_labels"]
        problems = []
        if inputs.ndim != 2 or inputs.shape[1] != n_features:
            problems.append(f"inputs has shape {inputs.shape}, expected [n, {n_features}]")
        if probs.shape != (inputs.shape[0], n_classes):
            problems.append(
                f"probabilities has shape {probs.shape}, expected [{inputs.shape[0]}, {n_classes}]"
            )
        if h_inputs.ndim != 2 or h_inputs.shape[1] != n_features:
            problems.append(f"holdout_inputs has shape {h_inputs.shape}, expected [m, {n_features}]")
        if h_labels.shape != (h_inputs.shape[0],) or not np.issubdtype(h_labels.dtype, np.integer):
            problems.append(
                f"holdout_labels is {h_labels.dtype} {h_labels.shape}, expected int64 [{len(h_inputs)}]"
            )
        elif len(h_labels) and (h_labels.min() < 0 or h_labels.max() >= n_classes):
            problems.append(f"holdout_labels has values outside [0, {n_classes})")
        segments = arrays.get("holdout_segments")
        if segments is not None and segments.shape != (h_inputs.shape[0],):
            problems.append(f"holdout_segments has shape {segments.shape}, expected [{h_inputs.shape[0]}]")
        imputed = np.array([f.missing != "error" for f in card.numeric_features], dtype=bool)
        for key in ("inputs", "probabilities", "holdout_inputs"):
            arr = arrays[key]
            if not np.issubdtype(arr.dtype, np.number):
                problems.append(f"{key} is {arr.dtype}, expected numbers")
                continue
            finite = np.isfinite(arr)
            if key != "probabilities" and arr.ndim == 2 and arr.shape[1] == len(imputed):
                finite |= np.isnan(arr) & imputed[None, :]  # missing where the graph imputes
            if not np.all(finite):
                problems.append(f"{key} holds NaN or inf")
        cats = _categorical_arrays(arrays, card, inputs.shape[0], h_inputs.shape[0], problems)
        if problems:
            raise ReferenceDataError(f"{REFERENCE_FILE}: " + "; ".join(problems))
        return Reference(
            inputs=np.ascontiguousarray(inputs, dtype=np.float32),
            probabilities=probs.astype(np.float64),
            holdout_inputs=np.ascontiguousarray(h_inputs, dtype=np.float32),
            holdout_labels=h_labels.astype(np.int64),
            holdout_segments=None if segments is None else segments.astype(str),
            categorical=cats[0],
            holdout_categorical=cats[1],
        )


def _categorical_arrays(arrays: dict[str, np.ndarray], card: ModelCard, n: int, m: int, problems: list[str]
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``categorical_inputs`` / ``holdout_categorical_inputs``: unicode [rows, n_categorical] when the card
    has categorical columns (never object arrays: the file is read without pickle)."""
    width = len(card.categorical_features)
    if not width:
        return None, None
    out: list[np.ndarray | None] = []
    for key, rows in (("categorical_inputs", n), ("holdout_categorical_inputs", m)):
        arr = arrays.get(key)
        if arr is None:
            problems.append(f"{key} is missing (the card has {width} categorical columns)")
            out.append(None)
        elif arr.dtype.kind != "U" or arr.shape != (rows, width):
            problems.append(f"{key} is {arr.dtype} {arr.shape}, expected unicode [{rows}, {width}]")
            out.append(None)
        else:
            out.append(np.ascontiguousarray(arr))
    if problems:
        raise ReferenceDataError(f"{REFERENCE_FILE}: " + "; ".join(problems))
    return out[0], out[1]
