"""A small real cascade for any test folder: ``a`` -> ``b`` trained by ``lockgate train --upstream``.

:func:`build_cascade` trains ``a`` (``risky`` from g1..g4 and region, hist gradient boosting) on the
generated tables of :mod:`training.synthetic`, signs a gate verdict with the session's test key
(:func:`tests.bundles.write_attestation`), registers and releases it in the registry at ``url``, then
trains ``b`` (``default``, logistic regression) with ``--upstream a:1`` and registers and releases it.
Cheap: 500 rows per table, one candidate, one calibration split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cascade_registry.artifacts import ModelBundle
from tests.bundles import open_trusting, write_attestation
from training.cli import main as train_main
from training.synthetic import write_cascade_tables

__all__ = ["FAST", "Cascade", "build_cascade", "publish"]

#: the cheapest training options that still calibrate
FAST = ["--trials", "1", "--calibration-cv", "0", "--calibration", "sigmoid", "--quiet"]


@dataclass(frozen=True)
class Cascade:
    """Where the cascade lives: bundles under ``root/out``, the registry at ``url``, the three tables."""

    root: Path
    url: str
    tables: dict[str, Path]

    def bundle(self, name: str, version: int = 1) -> Path:
        return self.root / "out" / f"{name}-{version}"

    def train(self, *options: str) -> int:
        """``lockgate train OPTIONS`` with the cheap options, into ``root/out``, against this registry."""
        return train_main([*options, *FAST, "--out", str(self.root / "out"), "--registry-url", self.url])

    def train_a(self, *options: str) -> int:
        return self.train("--data", str(self.tables["a"]), "--target", "risky", "--name", "a", *options)

    def train_b(self, *options: str) -> int:
        return self.train("--data", str(self.tables["b"]), "--target", "default", "--name", "b", *options)


def publish(url: str, bundle: Path, release: bool = True) -> None:
    """Sign a passing verdict for ``bundle``, register it in the registry at ``url``, release it."""
    write_attestation(bundle, ModelBundle.read_card(bundle).ref)
    with open_trusting(url) as reg:
        info = reg.register(bundle, actor="tests")
        if release:
            reg.release(info.ref, actor="tests")


def build_cascade(root: Path, url: str | None = None) -> Cascade:
    """Train and release ``a:1``, then ``b:1`` on ``--upstream a:1`` (see the module docstring)."""
    tables = write_cascade_tables(root / "data", rows=500)
    c = Cascade(root, url or f"sqlite:///{root / 'registry.db'}", tables)
    assert c.train_a("--model", "hist_gradient_boosting") == 0
    publish(c.url, c.bundle("a"))
    assert c.train_b("--model", "logistic_regression", "--upstream", "a:1") == 0
    publish(c.url, c.bundle("b"))
    return c
