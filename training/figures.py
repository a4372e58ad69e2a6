"""Saving matplotlib figures: Agg backend, no timestamps or software tag, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from cascade_registry.artifacts import published_mode

__all__ = ["save_png"]


def save_png(fig: Any, path: Path, dpi: int = 80) -> Path:
    """Write ``fig`` to ``path`` through a temp file beside it, then close the figure."""
    import matplotlib.pyplot as plt

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.fchmod(fd, published_mode())
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, metadata={"Software": None})
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path
