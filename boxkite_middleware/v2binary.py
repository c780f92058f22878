"""The binary tensor extension of the V2 (Open Inference) protocol.

Triton's clients send tensors this way by default and KServe's ``InferRequest``
can: the body is a JSON header of ``Inference-Header-Content-Length`` bytes, then
each tensor whose ``parameters.binary_data_size`` is set, as raw little-endian
values in the header's order (BYTES as 4-byte length-prefixed strings). Reading
it yields the same document as the JSON form, so the kserve-v2 preset reads both.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

INFERENCE_HEADER = "inference-header-content-length"

_DTYPES = {
    "BOOL": "<?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
_LENGTH = struct.Struct("<I")


class BinaryError(ValueError):
    """A binary body whose header and tensors do not line up."""


def read_binary(body: bytes, header_length: int) -> Any:
    """The V2 document of a binary body, each binary tensor's ``data`` filled in."""
    if header_length < 0 or header_length > len(body):
        raise BinaryError("header length outside the body")
    try:
        doc = orjson.loads(body[:header_length])
    except orjson.JSONDecodeError:
        raise BinaryError("header is not JSON") from None
    position = header_length
    for key in ("inputs", "outputs"):
        tensors = doc.get(key) if type(doc) is dict else None
        if type(tensors) is not list:
            continue
        for tensor in tensors:
            parameters = tensor.get("parameters") if type(tensor) is dict else None
            size = parameters.get("binary_data_size") if type(parameters) is dict else None
            if size is None:
                continue
            if type(size) is not int or size < 0 or position + size > len(body):
                raise BinaryError("tensor size outside the body")
            raw = body[position : position + size]
            position += size
            tensor["data"] = _values(raw, tensor.get("datatype"))
    return doc


def _values(raw: bytes, datatype: Any) -> list[Any]:
    if datatype == "BYTES":
        return _strings(raw)
    dtype = _DTYPES.get(datatype)  # type: ignore[arg-type]
    if dtype is None or len(raw) % np.dtype(dtype).itemsize:
        raise BinaryError("unknown datatype or a partial element")
    return np.frombuffer(raw, dtype=dtype).tolist()


def _strings(raw: bytes) -> list[str | None]:
    """4-byte length-prefixed elements as text (None where not UTF-8)."""
    out: list[str | None] = []
    position, end = 0, len(raw)
    while position < end:
        if position + 4 > end:
            raise BinaryError("partial BYTES length")
        (length,) = _LENGTH.unpack_from(raw, position)
        position += 4
        if position + length > end:
            raise BinaryError("BYTES element outside the tensor")
        try:
            out.append(raw[position : position + length].decode("utf-8"))
        except UnicodeDecodeError:
            out.append(None)
        position += length
    return out
