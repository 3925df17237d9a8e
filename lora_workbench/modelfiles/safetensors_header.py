"""Read a .safetensors file's header (tensor names, dtypes, shapes, metadata) without loading tensors.

The format: 8 bytes little-endian header length, then that many bytes of JSON. Reading only the
header costs one small read even for a 7 GB checkpoint, and needs neither torch nor safetensors.
A header is checked against the format as safetensors itself reads it (`__metadata__` a map of
strings, each tensor a dtype, a shape of whole numbers and two data offsets), so a hostile file (a
shared LoRA) is one sentence here, not a TypeError in whichever rule reads a shape first.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from dataclasses import dataclass, field

from ..errors import WorkbenchError

MAX_HEADER = 100 * 1024 * 1024  # the safetensors spec's own limit


@dataclass
class SafetensorsHeader:
    path: str
    tensors: dict[str, dict] = field(default_factory=dict)  # name -> {"dtype", "shape", "data_offsets"}
    metadata: dict[str, str] = field(default_factory=dict)  # the "__metadata__" strings (kohya ss_*)

    def shape(self, name: str) -> list[int] | None:
        t = self.tensors.get(name)
        return list(t["shape"]) if t else None

    def keys(self) -> list[str]:
        return list(self.tensors)


def read_header(path: str | os.PathLike) -> SafetensorsHeader:
    """Parse the header of a .safetensors/.sft file; a clear WorkbenchError when it is not one."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            raw_len = f.read(8)
            if len(raw_len) < 8:
                raise WorkbenchError(f"{p} is not a safetensors file (shorter than 8 bytes).")
            (n,) = struct.unpack("<Q", raw_len)
            if n <= 1 or n > MAX_HEADER or n > os.fstat(f.fileno()).st_size - 8:
                raise WorkbenchError(f"{p} is not a safetensors file (header length {n} is impossible).")
            raw = f.read(n)
    except FileNotFoundError:
        raise WorkbenchError(f"{p} does not exist.") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not UTF-8 or JSON, nested without end, a 5,000-digit number
        raise WorkbenchError(f"{p} is not a safetensors file (its header is not JSON).") from None
    if not isinstance(data, dict):
        raise WorkbenchError(f"{p} is not a safetensors file (its header is not a JSON object).")
    meta = data.pop("__metadata__", None) or {}
    why = _odd_metadata(meta) or next((w for w in map(_odd_tensor, data.values()) if w), "")
    if why:
        raise WorkbenchError(f"{p} is not a safetensors file ({why}).")
    return SafetensorsHeader(path=p, tensors=data, metadata=dict(meta))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _odd_metadata(meta: object) -> str:
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        return "its __metadata__ is not a map of texts"
    return ""


def _odd_tensor(t: object) -> str:
    """Why a header entry is not a tensor's description, "" when it is one."""
    if not isinstance(t, dict) or not isinstance(t.get("dtype"), str):
        return "a tensor entry has no dtype"
    shape, offsets = t.get("shape"), t.get("data_offsets")
    if not isinstance(shape, list) or not all(map(_whole, shape)):
        return "a tensor's shape is not a list of whole numbers"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_whole, offsets))):
        return "a tensor's data_offsets are not two whole numbers"
    return ""


def incomplete(path: str | os.PathLike) -> str:
    """Why a .safetensors file is not whole, "" when it is: its tensors' data must end exactly where
    the file ends (8 + header length + the largest data_offsets end). A file cut off while it was
    written (a full disk, a killed run) fails this. A FIFO or other non-file is not waited on."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "it is not a regular file"
        return _cut_off(f, st.st_size)


def _cut_off(f, size: int) -> str:
    raw_len = f.read(8)
    if len(raw_len) < 8:
        return f"it holds only {size} bytes"
    (n,) = struct.unpack("<Q", raw_len)
    if n <= 1 or n > MAX_HEADER or n > size - 8:
        return f"its header length {n} runs past the end of the file ({size} bytes)"
    try:
        data = json.loads(f.read(n))
        ends = [t["data_offsets"][1] for k, t in data.items() if k != "__metadata__"]
        end = max((int(e) for e in ends), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return "its header is not a safetensors header"
    expected = 8 + n + end
    if size != expected:
        return f"it holds {size} bytes where its header needs {expected}"
    return ""


def write_safetensors_header_only(
    path: str | os.PathLike, tensors: dict[str, tuple[str, list[int]]], metadata: dict[str, str] | None = None
) -> None:
    """Write a valid safetensors file with zero-filled data (tests and benchmarks: synthetic models).

    `tensors` maps name -> (dtype, shape), dtype as in safetensors ("F16", "F32", ...).
    """
    sizes = {
        "F64": 8,
        "F32": 4,
        "F16": 2,
        "BF16": 2,
        "F8_E4M3": 1,
        "F8_E5M2": 1,
        "I64": 8,
        "I32": 4,
        "I16": 2,
        "I8": 1,
        "U8": 1,
        "BOOL": 1,
    }
    header: dict = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for d in shape:
            count *= d
        nbytes = count * sizes[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata:
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)
