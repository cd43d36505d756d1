"""Encoded images (PNG or JPEG bytes) to the float tensors a model trains on, with one TensorFlow
function used both before training and inside the exported signature, so both see the same pixels.

Each image is decoded to `channels` (1 or 3), resized to `height` x `width` (bilinear; an image of
that size already is left as it is) and scaled to [0, 1]. An empty value (a missing image) becomes an
all-zero image; a value that is neither PNG nor JPEG fails with InvalidArgumentError naming the
feature, which TF Serving answers as INVALID_ARGUMENT.

>>> import numpy as np
>>> from train.data import PNG_MAGIC
>>> png = encode_png(np.array([[0, 255], [255, 0]], dtype=np.uint8))
>>> png.startswith(PNG_MAGIC)
True
>>> decode_to_numpy(np.array([png, b""], dtype=object), "digit", 2, 2, 1)[:, :, :, 0].tolist()
[[[0.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np


def encode_png(pixels: np.ndarray) -> bytes:
    """A PNG file of 8-bit pixels, [h, w] (grayscale) or [h, w, 3] (RGB), written without any imaging library."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    if a.ndim == 2:
        color, rows = 0, a
    elif a.ndim == 3 and a.shape[2] == 3:
        color, rows = 2, a.reshape(a.shape[0], -1)
    else:
        raise ValueError(f"encode_png takes [h, w] or [h, w, 3] pixels, got shape {a.shape}")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def decode_images(encoded: Any, name: str, height: int, width: int, channels: int) -> Any:
    """[batch] string tensor of encoded images -> [batch, height, width, channels] float32 in [0, 1]."""
    import tensorflow as tf

    encoded = tf.convert_to_tensor(encoded, dtype=tf.string)
    empty = tf.equal(tf.strings.length(encoded), 0)
    png = tf.equal(tf.strings.substr(encoded, 0, 8), b"\x89PNG\r\n\x1a\n")
    jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff")
    check = tf.debugging.Assert(
        tf.reduce_all(empty | png | jpeg),
        [f"image feature `{name}`: a value is neither PNG nor JPEG (send the file bytes, base64 over REST)"],
    )

    def one(x: Any) -> Any:
        def decode() -> Any:
            image = tf.io.decode_image(x, channels=channels, expand_animations=False, dtype=tf.uint8)
            image = tf.cast(image, tf.float32) / 255.0
            size = tf.shape(image)[:2]
            same = tf.logical_and(tf.equal(size[0], height), tf.equal(size[1], width))
            return tf.cond(
                same,
                lambda: tf.reshape(image, [height, width, channels]),
                lambda: tf.reshape(tf.image.resize(image, [height, width]), [height, width, channels]),
            )

        return tf.cond(tf.equal(tf.strings.length(x), 0), lambda: tf.zeros([height, width, channels]), decode)

    with tf.control_dependencies([check]):
        return tf.map_fn(one, encoded, fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32))


def decode_to_numpy(values: np.ndarray, name: str, height: int, width: int, channels: int) -> np.ndarray:
    """The same decoding, eagerly, for training: float32 [rows, height, width, channels]."""
    return np.asarray(decode_images(list(values), name, height, width, channels), dtype=np.float32)
