"""sensor_msgs/PointCloud2: a fast xyz(+rgb) builder and a general reader.

Layout written by ``build_pointcloud2``: fields ``x y z`` (FLOAT32) at offsets 0/4/8 and, with
colours, ``rgb`` (FLOAT32 holding the packed uint32 ``0x00RRGGBB``, the PCL/RViz convention) at 12;
``point_step`` 12 or 16, little endian. An organized cloud keeps ``height x width`` of the image
grid; invalid points are NaN in x, y and z, and ``is_dense`` is True only if no point is NaN.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np
from sensor_msgs.msg import PointCloud2, PointField

from .errors import MessageConversionError
from .image_conversion import _buffer_bytes, new_uint8_buffer, set_uint8_data

_DTYPES = {
    PointField.INT8: np.int8, PointField.UINT8: np.uint8, PointField.INT16: np.int16,
    PointField.UINT16: np.uint16, PointField.INT32: np.int32, PointField.UINT32: np.uint32,
    PointField.FLOAT32: np.float32, PointField.FLOAT64: np.float64,
}


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> float32 (...) holding 0x00RRGGBB bit patterns."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    return packed.view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """float32/uint32 packed 0x00RRGGBB (...) -> uint8 (..., 3) RGB."""
    bits = np.ascontiguousarray(packed).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1).astype(np.uint8)


def build_pointcloud2(xyz: np.ndarray, rgb: np.ndarray | None = None, *, header=None) -> PointCloud2:
    """Build a PointCloud2 from (H, W, 3) (organized) or (N, 3) (unorganized) float points.

    ``rgb`` (same leading shape, uint8 x 3) adds a packed ``rgb`` field. NaN marks invalid points.
    """
    pts = np.asarray(xyz)
    if pts.ndim not in (2, 3) or pts.shape[-1] != 3:
        raise MessageConversionError(f"points must be (H, W, 3) or (N, 3), got {pts.shape}")
    if pts.ndim == 3:
        height, width = pts.shape[:2]
    else:
        height, width = 1, pts.shape[0]
    nfields = 3 if rgb is None else 4
    pts32 = np.ascontiguousarray(pts, dtype="<f4").reshape(height, width, 3)
    data, view = new_uint8_buffer(height * width * 4 * nfields)
    out = view.view("<f4").reshape(height, width, nfields)
    if rgb is None:
        out[...] = pts32
    else:
        colours = np.asarray(rgb)
        if colours.shape != pts.shape or colours.dtype != np.uint8:
            raise MessageConversionError(
                f"rgb must be uint8 of shape {pts.shape}, got {colours.dtype} {colours.shape}")
        # BGRA bytes read as little-endian uint32 are 0xAARRGGBB; clear alpha -> 0x00RRGGBB.
        # (height, width, 3) images: OpenCV works row by row, so never hand it one pixel per row
        packed = cv2.cvtColor(np.ascontiguousarray(colours.reshape(height, width, 3)),
                              cv2.COLOR_RGB2BGRA).view(np.uint32)
        packed &= np.uint32(0x00FFFFFF)
        # cv2.merge interleaves the planes with a bit-exact copy straight into the message buffer
        # (much faster than numpy strided assignment into an (n, 4) buffer)
        cv2.merge([pts32, packed.view(np.float32)], dst=out)
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = height, width
    names = ("x", "y", "z", "rgb")[:nfields]
    msg.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, name in enumerate(names)]
    msg.is_bigendian = False
    msg.point_step = 4 * nfields
    msg.row_step = msg.point_step * width
    msg.is_dense = bool(not np.isnan(pts32).any())
    set_uint8_data(msg, data)
    return msg


def read_pointcloud2(msg: PointCloud2) -> dict[str, np.ndarray]:
    """PointCloud2 -> {field name: (height, width) array} (count-1 fields; ``rgb`` left packed).

    Honours ``point_step``, ``row_step`` and ``is_bigendian``; raises MessageConversionError when the
    layout does not fit the data.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    buf = np.frombuffer(_buffer_bytes(msg.data), dtype=np.uint8)
    if row_step < point_step * width:
        raise MessageConversionError(
            f"PointCloud2 row_step {row_step} < point_step {point_step} * width {width}")
    if buf.size != row_step * height:
        raise MessageConversionError(
            f"PointCloud2 data size mismatch: row_step {row_step} * height {height} = "
            f"{row_step * height} bytes expected, got {buf.size}")
    order = ">" if msg.is_bigendian else "<"
    rows = buf.reshape(height, row_step)[:, :point_step * width].reshape(height, width, point_step)
    out: dict[str, np.ndarray] = {}
    for field in msg.fields:
        if field.datatype not in _DTYPES:
            raise MessageConversionError(f"PointCloud2 field '{field.name}' has unknown datatype {field.datatype}")
        dtype = np.dtype(_DTYPES[field.datatype]).newbyteorder(order)
        if field.offset + dtype.itemsize * max(int(field.count), 1) > point_step:
            raise MessageConversionError(
                f"PointCloud2 field '{field.name}' at offset {field.offset} overruns point_step {point_step}")
        raw = np.ascontiguousarray(rows[:, :, field.offset:field.offset + dtype.itemsize])
        out[field.name] = raw.view(dtype)[..., 0].astype(dtype.newbyteorder("="))
    return out


def pointcloud2_xyz_rgb(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray | None]:
    """Convenience reader: (height, width, 3) float32 xyz and (height, width, 3) uint8 rgb or None."""
    fields = read_pointcloud2(msg)
    missing = [n for n in ("x", "y", "z") if n not in fields]
    if missing:
        raise MessageConversionError(f"PointCloud2 has no field(s) {missing}")
    xyz = np.stack([fields["x"], fields["y"], fields["z"]], axis=-1).astype(np.float32)
    rgb = unpack_rgb(fields["rgb"].astype(np.float32)) if "rgb" in fields else None
    return xyz, rgb


assert sys.byteorder == "little", "build_pointcloud2 assumes a little-endian host"
