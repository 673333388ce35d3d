"""A minimal, fast PNG writer for 8-bit greyscale layer images, and a reader through Pillow.

Layer images are mostly black. Each row is written with PNG filter 0 (none), deflated at level 1 with the
standard library's zlib: ISA-L's deflate (``isal``) is several times faster but gave different bytes for the
same layer in different runs (the same pixels), and a job file must be a function of its inputs (the same
sha256 when built again). ISA-L still computes the CRC-32 and Adler-32 when installed. ``FrameEncoder``
deflates only the band of rows that holds the layer's tile, so the deflate is a small part of the work: the
black rows above and below are pre-deflated runs of ``2**j`` rows, joined as byte-aligned deflate blocks,
and their Adler-32 is computed in closed form. Adaptive PNG filters cost more time than they save here.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib

import numpy as np

try:  # ISA-L's checksums: the same values as zlib's, faster
    from isal import isal_zlib as _checksum_mod
except ImportError:  # pragma: no cover - depends on the environment
    _checksum_mod = zlib
    logging.getLogger(__name__).info("isal not installed: PNG checksums use the stdlib zlib")
# deflate: the stdlib's, whose output depends on nothing but the input and the level (module docs)
_deflate_mod = zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_raw(raw: np.ndarray | memoryview, width: int, height: int, color_type: int = 0) -> bytes:
    """PNG bytes from ``raw`` = (height, 1 + width * channels) uint8 rows, each led by its filter byte.

    color_type : 0 greyscale (1 channel), 2 RGB (3), 6 RGBA (4); bit depth 8.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = _deflate_mod.compress(raw, 1)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode(img: np.ndarray) -> bytes:
    """PNG bytes of an (h, w) greyscale, (h, w, 3) RGB or (h, w, 4) RGBA uint8 image."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape[:2]
    ch = 1 if img.ndim == 2 else img.shape[2]
    ctype = {1: 0, 3: 2, 4: 6}[ch]
    raw = np.zeros((h, 1 + w * ch), dtype=np.uint8)
    raw[:, 1:] = img.reshape(h, w * ch)
    return encode_raw(raw, w, h, ctype)


def raw_deflate(data, level: int = 1, final: bool = False) -> bytes:
    """Self-contained raw deflate blocks of ``data``, byte-aligned (sync flush) or ending the stream."""
    c = _deflate_mod.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def crc32(data) -> int:
    """CRC-32 of ``data`` (ISA-L's when installed)."""
    return _checksum_mod.crc32(data) & 0xFFFFFFFF


def _adler_zeros(value: int, n: int) -> int:
    """Adler-32 ``value`` continued over ``n`` zero bytes (``a`` stays, ``b`` grows by ``n * a``)."""
    a, b = value & 0xFFFF, value >> 16
    return (((b + n * a) % 65521) << 16) | a


_EMPTY_FINAL_BLOCK = b"\x03\x00"   # BFINAL=1, fixed Huffman, end-of-block


class FrameEncoder:
    """Encodes (row0, col0, tile) layers into full-size greyscale PNGs without deflating the black rows.

    The zlib stream of the image is assembled from pieces, each a self-contained run of byte-aligned deflate
    blocks: the black rows above and below the tile come from pre-deflated runs of ``2**j`` zero rows
    (binary decomposition of the count), and only the band of rows holding the tile is deflated per layer.
    The Adler-32 of the zero runs is computed in closed form. The pixels are exactly those of ``encode``.
    """

    def __init__(self, width: int, height: int, level: int = 1) -> None:
        self.width, self.height, self.level = width, height, level
        row = width + 1
        # once per frame size, so at zlib's best level: mostly black layers stay small files
        self._zero_runs = [raw_deflate(bytes(row << j), 9) for j in range(max(1, height.bit_length()))]

    def _zeros(self, rows: int) -> list[bytes]:
        return [self._zero_runs[j] for j in range(rows.bit_length()) if rows >> j & 1]

    def encode_tile(self, row0: int, col0: int, tile: np.ndarray) -> bytes:
        h, w = tile.shape
        if row0 < 0 or col0 < 0 or row0 + h > self.height or col0 + w > self.width:
            raise ValueError(f"tile {tile.shape} at ({row0}, {col0}) leaves the {self.width}x{self.height} frame")
        row = self.width + 1
        band = np.zeros((h, row), dtype=np.uint8)
        band[:, 1 + col0:1 + col0 + w] = tile
        below = self.height - row0 - h
        adler = _adler_zeros(1, row0 * row)
        adler = _checksum_mod.adler32(band, adler) if h else adler
        adler = _adler_zeros(adler, below * row)
        parts = [b"\x78\x01", *self._zeros(row0)]
        if h:
            parts.append(raw_deflate(band, self.level))
        parts += self._zeros(below)
        parts += [_EMPTY_FINAL_BLOCK, struct.pack(">I", adler)]
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 0, 0, 0, 0)
        return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def decode(data: bytes) -> np.ndarray:
    """Pixels of a PNG as a uint8 array ((h, w) for greyscale, (h, w, c) otherwise)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)
