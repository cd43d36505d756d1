"""Per-row summaries of text and image values, without TensorFlow: the model card records their
training distribution and `monitor drift` compares live values with it, both through these functions.

Text: the number of tokens and how many are out of the vocabulary, after the standardization that
TextVectorization's default applies (lower case, ASCII punctuation removed, split on whitespace).
Images: the encoded size in bytes, the pixel count and the mean intensity in [0, 1] (grayscale).

>>> tokens("Hello, World! hello")
['hello', 'world', 'hello']
>>> oov_count(["hello", "world"], {"hello"})
1
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable

import numpy as np

_PUNCTUATION = re.compile(r"[!\"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~']")


def tokens(text: str, standardize: str | None = "lower_and_strip_punctuation") -> list[str]:
    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = text.lower()
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = _PUNCTUATION.sub("", text)
    return text.split()


def oov_count(toks: Iterable[str], vocabulary: set[str]) -> int:
    return sum(1 for t in toks if t not in vocabulary)


def text_summary(values: Iterable[str], vocabulary: set[str], standardize: str | None) -> tuple[np.ndarray, float]:
    """Token counts per non-missing value, and the out-of-vocabulary rate over all their tokens."""
    lengths, oov, total = [], 0, 0
    for v in values:
        if not v:
            continue
        toks = tokens(v, standardize)
        lengths.append(len(toks))
        oov += oov_count(toks, vocabulary)
        total += len(toks)
    return np.asarray(lengths, dtype=np.float64), (oov / total if total else 0.0)


def image_summary(values: Iterable[bytes]) -> dict[str, np.ndarray]:
    """Encoded bytes, pixel count and mean grayscale intensity per non-empty image (NaN where it cannot be
    decoded)."""
    from PIL import Image

    sizes: list[int] = []
    pixels: list[float] = []
    intensity: list[float] = []
    for v in values:
        if not v:
            continue
        sizes.append(len(v))
        try:
            with Image.open(io.BytesIO(v)) as im:
                pixels.append(im.width * im.height)
                intensity.append(float(np.asarray(im.convert("L"), dtype=np.float64).mean() / 255.0))
        except (OSError, ValueError):
            pixels.append(np.nan)
            intensity.append(np.nan)
    return {
        "bytes": np.asarray(sizes, dtype=np.float64),
        "pixels": np.asarray(pixels, dtype=np.float64),
        "mean_intensity": np.asarray(intensity, dtype=np.float64),
    }
