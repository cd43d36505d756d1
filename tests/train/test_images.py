"""Image decoding shared by training and the exported signature: PNG and JPEG, gray and RGB, resized."""

import io

import numpy as np
import pytest
import tensorflow as tf

from train.images import decode_to_numpy, encode_png


def _jpeg(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_png_rgb_to_gray_and_resized_to_the_declared_size():
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:, 8:] = 255
    out = decode_to_numpy(np.array([encode_png(rgb)], dtype=object), "img", 8, 8, 1)
    assert out.shape == (1, 8, 8, 1)
    assert out[0, :, :3].max() == 0.0 and out[0, :, 5:].min() == 1.0


def test_jpeg_decodes_to_rgb_in_0_1():
    pixels = np.full((8, 8, 3), 128, dtype=np.uint8)
    out = decode_to_numpy(np.array([_jpeg(pixels)], dtype=object), "img", 8, 8, 3)
    assert out.shape == (1, 8, 8, 3) and abs(float(out.mean()) - 128 / 255) < 0.02


def test_a_value_that_is_not_an_image_fails_naming_the_feature():
    with pytest.raises(tf.errors.InvalidArgumentError, match="image feature `photo`: a value is neither PNG nor JPEG"):
        decode_to_numpy(np.array([b"GIF89a"], dtype=object), "photo", 8, 8, 1)
