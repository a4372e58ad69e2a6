"""Generated data sets with input kinds beyond a table: token sequences with a known rule, and sequences
beside table columns (a multi-input set), plus the image layout of scikit-learn's 8x8 digits.

Each set is a plain numeric table (one column per token position, or per pixel) and the
:class:`cascade_registry.artifacts.InputSpec` records saying which columns form which input, so every
family can train on it and the deep topologies (``training.deep.topology``) can read its structure.

The rule of ``sequences``: every sequence holds the tokens ``open`` and ``close`` once each, at random
positions among 2-14 filler tokens; the label is ``ordered`` when ``open`` comes first, else ``reversed``.
Only the order matters, so counting tokens (a bag of words) scores 50%. ``mixed_inputs`` adds three
numeric columns ``x0..x2`` ~ N(0, 1) and four classes ``<order>_<high|low>`` (high: ``x0 + x1 > 0``):
neither input alone can score above about 50%.
"""

from __future__ import annotations

import numpy as np

from cascade_registry.artifacts import PAD_ID, InputSpec

__all__ = [
    "FILLERS",
    "MAX_TOKENS",
    "VOCABULARY",
    "digits_image_input",
    "encode_tokens",
    "generate_sequences",
    "inputs_text",
    "mixed_inputs",
    "sequence_input",
    "with_unknown_policy",
]

FILLERS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
VOCABULARY = (*FILLERS, "open", "close")
#: the longest generated sequence; ids are left-padded to this many columns
MAX_TOKENS = 16
TOKENIZER = ("card vocabulary, applied by the gateway: vocabulary[i] -> id i + 2, 0 = padding, 1 = unknown "
             "token; ids right-aligned in max_length columns (pads first)")


def encode_tokens(tokens: list[str], vocabulary: tuple[str, ...], max_length: int) -> np.ndarray:
    """One sequence -> its left-padded ids (float64 [max_length]); unknown tokens -> id 1."""
    index = {t: i + 2 for i, t in enumerate(vocabulary)}
    ids = [index.get(t, 1) for t in tokens[-max_length:]]
    row = np.full(max_length, float(PAD_ID))
    row[max_length - len(ids):] = ids
    return row


def sequence_input(name: str = "tokens", max_length: int = MAX_TOKENS) -> InputSpec:
    """The card record of the generated sequences' token columns."""
    return InputSpec(
        name=name, kind="sequence", columns=[f"tok_{i:02d}" for i in range(max_length)],
        max_length=max_length,
        vocabulary=list(VOCABULARY), unknown="unk", tokenizer=TOKENIZER,
    )


def generate_sequences(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """``n`` sequences of the ``open``/``close`` rule: (ids float64 [n, MAX_TOKENS], order 0/1, tokens)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, MAX_TOKENS))
    y = np.zeros(n, dtype=np.int64)
    texts: list[list[str]] = []
    for r in range(n):
        length = int(rng.integers(4, MAX_TOKENS + 1))
        tokens = [FILLERS[int(i)] for i in rng.integers(len(FILLERS), size=length)]
        first, second = rng.choice(length, size=2, replace=False)
        tokens[first], tokens[second] = "open", "close"
        y[r] = int(first > second)  # 0 = ordered (open first), 1 = reversed
        texts.append(tokens)
        X[r] = encode_tokens(tokens, VOCABULARY, MAX_TOKENS)
    return X, y, texts


def mixed_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], tuple[InputSpec, ...]]:
    """The multi-input set: (X [n, 3 + MAX_TOKENS], y 0..3, feature names, its two inputs)."""
    ids, order, _ = generate_sequences(n, seed)
    table = np.random.default_rng(seed + 1).standard_normal((n, 3))
    high = (table[:, 0] + table[:, 1] > 0).astype(np.int64)
    tokens = sequence_input()
    names = ["x0", "x1", "x2", *tokens.columns]
    inputs = (InputSpec(name="table", kind="tabular", columns=["x0", "x1", "x2"]), tokens)
    return np.hstack([table, ids]), 2 * order + high, names, inputs


def digits_image_input(feature_names: list[str]) -> InputSpec:
    """scikit-learn's digits as one 8x8 grayscale image (pixel values 0..16, row-major columns)."""
    return InputSpec(name="image", kind="image", columns=list(feature_names), shape=[8, 8, 1],
                     value_range=[0.0, 16.0])


def inputs_text(inputs: tuple[InputSpec, ...]) -> str:
    """How to send a model's images and sequences (appended to ``card.how_to_consume``); "" for a table."""
    parts = []
    for spec in inputs:
        if spec.kind == "image":
            h, w, c = spec.shape or (0, 0, 0)
            low, high = spec.value_range or (0.0, 1.0)
            parts.append(
                f" Input {spec.name!r} is a {h}x{w}x{c} image with pixel values in [{low:g}, {high:g}]: send "
                f"it in /predict instances under {spec.name!r} as a nested list of {h} rows of {w} numbers, "
                f"or as a base64 PNG of {w}x{h} pixels (0..255 scaled to [{low:g}, {high:g}]); in 'input' it "
                f"fills the {len(spec.columns)} columns {spec.columns[0]}..{spec.columns[-1]} (row-major).")
        elif spec.kind == "sequence":
            parts.append(
                f" Input {spec.name!r} is a sequence of {spec.min_length} to {spec.max_length} tokens from "
                f"card.inputs[].vocabulary ({len(spec.vocabulary)} tokens): send a list of strings, or one "
                f"string split on spaces, under {spec.name!r}; an unknown token is "
                + ("refused." if spec.unknown == "error" else "read as the unknown token, with a warning.")
                + f" Tokenizer: {spec.tokenizer}.")
    return "".join(parts)


def with_unknown_policy(inputs: tuple[InputSpec, ...], unknown_category: str) -> list[InputSpec]:
    """The inputs as the card records them: ``--unknown-category error`` makes the gateway refuse a token
    outside a sequence's vocabulary; ``other`` and ``ignore`` read it as the unknown token (id 1)."""
    policy = "error" if unknown_category == "error" else "unk"
    return [s.model_copy(update={"unknown": policy}) if s.kind == "sequence" else s for s in inputs]
