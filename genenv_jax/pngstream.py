"""A PNG writer that takes the image strip by strip (never whole in memory)."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
  return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


class StripPNG:
  """Writes an 8-bit RGB or grayscale PNG (or a 16-bit grayscale one, ``bits=16``) of known size, rows top
  to bottom.

  The file appears under its name only after ``close()`` (written to a
  temporary name and renamed), so a killed run leaves no half image.
  """

  def __init__(self, path: str, height: int, width: int, channels: int, bits: int = 8):
    if channels not in (1, 3):
      raise ValueError(f"channels={channels}: PNG strips support 1 (gray) or 3 (RGB)")
    if bits not in (8, 16) or (bits == 16 and channels != 1):
      raise ValueError(f"bits={bits}: PNG strips are 8-bit, or 16-bit gray")
    self.path, self.height, self.width, self.channels, self.bits = path, height, width, channels, bits
    self._tmp = f"{path}.tmp{os.getpid()}"
    self._f = open(self._tmp, "wb")
    self._z = zlib.compressobj(6)
    self._rows = 0
    color = 2 if channels == 3 else 0
    self._f.write(b"\x89PNG\r\n\x1a\n")
    self._f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, color, 0, 0, 0)))

  def write(self, strip: np.ndarray) -> None:
    """Appends rows: [rows, width(, 3)] uint8 (uint16 values for a 16-bit PNG)."""
    rows = np.asarray(strip).shape[0]
    if self._rows + rows > self.height:
      raise ValueError(f"PNG {self.path}: more than {self.height} rows written")
    if self.bits == 16:  # PNG samples are big-endian
      body = np.asarray(strip, ">u2").reshape(rows, self.width).view(np.uint8).reshape(rows, -1)
    else:
      body = np.asarray(strip, np.uint8).reshape(rows, self.width * self.channels)
    raw = np.concatenate([np.zeros((rows, 1), np.uint8), body], axis=1)
    data = self._z.compress(raw.tobytes())
    if data:
      self._f.write(_chunk(b"IDAT", data))
    self._rows += rows

  def close(self) -> None:
    if self._rows != self.height:
      raise ValueError(f"PNG {self.path}: {self._rows} of {self.height} rows written")
    self._f.write(_chunk(b"IDAT", self._z.flush()))
    self._f.write(_chunk(b"IEND", b""))
    self._f.close()
    os.replace(self._tmp, self.path)

  def abort(self) -> None:
    self._f.close()
    if os.path.exists(self._tmp):
      os.remove(self._tmp)
