"""sensor_msgs Image / CompressedImage <-> numpy HxWx3 uint8 RGB, without cv_bridge.

cv_bridge for ROS 2 is not installable from PyPI (and PyPI's cv-bridge is the ROS 1 one, broken
with numpy 2), so the node converts with numpy. The pixels are decoded by
planllm_ros/runtime/images.py, which the trainer shares for recorded frames; this module is the
message side. Every malformed message raises ImageConversionError with a message that says what
was wrong, so the node can log it and drop the frame instead of crashing.
"""
from __future__ import annotations

import array
import io

import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from planllm_ros.runtime.images import (
    COMPRESSED_FORMATS,
    ENCODINGS,
    ImageConversionError,
    check_size,
    decode_compressed,
    decode_raw,
)


def image_to_rgb(msg: Image) -> np.ndarray:
    """An HxWx3 uint8 RGB copy of a sensor_msgs/Image, honouring `step` (row padding)."""
    return decode_raw(msg.data, msg.encoding, msg.height, msg.width, msg.step)


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode a JPEG or PNG sensor_msgs/CompressedImage to HxWx3 uint8 RGB."""
    return decode_compressed(msg.data, msg.format)


def msg_to_rgb(msg: Image | CompressedImage) -> np.ndarray:
    """Either message type to HxWx3 uint8 RGB."""
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg)
    return image_to_rgb(msg)


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f"expected an HxWx3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    check_size(rgb.shape[1], rgb.shape[0], "RGB array")
    return rgb


def rgb_to_image(
    rgb: np.ndarray, encoding: str = "rgb8", header: Header | None = None, padding: int = 0
) -> Image:
    """A sensor_msgs/Image in `encoding` from HxWx3 uint8 RGB; `padding` extra bytes per row
    (some drivers align rows, and the node must honour `step`)."""
    rgb = _as_rgb(rgb)
    if encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
    channels, order = ENCODINGS[encoding]
    height, width = rgb.shape[:2]
    if order is None:  # ITU-R BT.601 luma, as PIL's "L" conversion
        pixels = np.asarray(PILImage.fromarray(rgb).convert("L"), dtype=np.uint8)[:, :, None]
    else:
        pixels = np.full((height, width, channels), 255, dtype=np.uint8)
        pixels[:, :, list(order)] = rgb
    rows = pixels.reshape(height, width * channels)
    if padding:
        rows = np.concatenate([rows, np.zeros((height, padding), dtype=np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=rows.shape[1])
    msg.header = header or Header()
    msg.data = array.array("B", np.ascontiguousarray(rows).tobytes())
    return msg


def rgb_to_compressed(
    rgb: np.ndarray, fmt: str = "jpeg", header: Header | None = None, quality: int = 90
) -> CompressedImage:
    """A JPEG or PNG sensor_msgs/CompressedImage from HxWx3 uint8 RGB."""
    rgb = _as_rgb(rgb)
    if fmt not in COMPRESSED_FORMATS:
        raise ImageConversionError(f"unsupported compressed format {fmt!r}; supported: {', '.join(COMPRESSED_FORMATS)}")
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "jpeg" else {}
    PILImage.fromarray(rgb).save(buffer, format=COMPRESSED_FORMATS[fmt], **options)
    msg = CompressedImage(format=fmt)
    msg.header = header or Header()
    msg.data = array.array("B", buffer.getvalue())
    return msg
