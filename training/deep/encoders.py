"""One subnetwork per input kind, and the network joining them (``torch.nn.Module`` s).

Every encoder reads its own columns of the graph's ``input`` [N, F] (a constant ``Gather``) and returns
an embedding [N, D]:

- :class:`TabularEncoder`: standardize (training-split mean/std) -> the MLP's hidden layers.
- :class:`ImageEncoder`: pixels clipped to the card's value range (NaN reads as its low end) and scaled
  to [0, 1] -> reshape to
  [N, C, H, W] -> conv (same padding) -> ReLU -> 2x2 max-pool -> flatten.
- :class:`SequenceEncoder`: ids clipped to the vocabulary and rounded (so NaN, inf or 1e30 cannot index
  outside the embedding table; NaN reads as padding) -> embedding (id 0 = padding, a zero vector) -> a GRU
  (or, ``cell="lstm"``, an LSTM) over the left-padded ids -> the last hidden state. One constant
  all-padding row rides in front of every batch and is dropped after the recurrent layer: ONNX Runtime's
  GRU kernel aborts the process on an empty batch (found by the gate's ``empty_batch`` case), and with the
  guard row neither kernel ever sees one.

:class:`MultiInputNetwork` concatenates the embeddings and puts one head on them (the MLP's
``build_network``): with one input it is a plain CNN or GRU classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training.deep.network import build_network

__all__ = ["CELLS", "ImageEncoder", "InputGroup", "MultiInputNetwork", "SequenceEncoder", "TabularEncoder"]


@dataclass(frozen=True)
class InputGroup:
    """One input as the network sees it: its kind and the positions of its columns in ``input``."""

    name: str
    kind: str  # "tabular" | "image" | "sequence"
    positions: tuple[int, ...]
    shape: tuple[int, int, int] = (0, 0, 0)  # image: H, W, C
    value_range: tuple[float, float] = (0.0, 1.0)  # image
    vocabulary_size: int = 0  # sequence: ids 0 .. vocabulary_size - 1 (0 pad, 1 unknown)


class _Columns(nn.Module):
    def __init__(self, positions: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("positions", torch.as_tensor(positions, dtype=torch.long))

    def columns(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.positions)


class TabularEncoder(_Columns):
    def __init__(self, group: InputGroup, mean: np.ndarray, scale: np.ndarray, units: tuple[int, ...],
                 activation: str, dropout: float) -> None:
        super().__init__(group.positions)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        hidden = build_network(len(group.positions), units[-1], units[:-1], activation, dropout)
        self.body = nn.Sequential(hidden, nn.ReLU())
        self.width = units[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((self.columns(x) - self.mean) / self.scale)


class ImageEncoder(_Columns):
    def __init__(self, group: InputGroup, channels: int, kernel_size: int) -> None:
        super().__init__(group.positions)
        self.h, self.w, self.c = group.shape
        self.low, high = group.value_range
        self.span = max(high - self.low, 1e-12)
        self.conv = nn.Conv2d(self.c, channels, kernel_size, padding=kernel_size // 2)
        self.pool = nn.MaxPool2d(2)
        self.width = channels * (self.h // 2) * (self.w // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.columns(x)
        raw = torch.where(torch.isnan(raw), torch.full_like(raw, self.low), raw)
        pixels = (raw.clamp(self.low, self.low + self.span) - self.low) / self.span
        image = pixels.reshape(-1, self.h, self.w, self.c).permute(0, 3, 1, 2)
        return self.pool(torch.relu(self.conv(image))).flatten(1)


#: the recurrent cells a sequence encoder may use
CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class SequenceEncoder(_Columns):
    def __init__(self, group: InputGroup, embedding_dim: int, units: int, cell: str = "gru") -> None:
        super().__init__(group.positions)
        self.top = float(group.vocabulary_size - 1)
        self.cell = cell
        self.embedding = nn.Embedding(group.vocabulary_size, embedding_dim, padding_idx=0)
        # the attribute is the cell's name ("gru" / "lstm"): the parameter names say which it is
        self.add_module(cell, CELLS[cell](embedding_dim, units, batch_first=True))
        self.register_buffer("guard", torch.zeros(1, len(group.positions), embedding_dim))
        self.width = units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.columns(x)
        raw = torch.where(torch.isnan(raw), torch.zeros_like(raw), raw)
        ids = raw.clamp(0.0, self.top).round().long()
        _, state = getattr(self, self.cell)(torch.cat([self.guard, self.embedding(ids)]))
        last = state[0] if self.cell == "lstm" else state  # an LSTM returns (hidden, cell state)
        return last[0, 1:]


class MultiInputNetwork(nn.Module):
    """Each input's encoder -> concatenated embeddings -> one head (logits)."""

    def __init__(self, encoders: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [encoder(x) for encoder in self.encoders]
        return self.head(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
