"""Image and model files made to break a reader: bombs, lies about sizes, damage, odd formats.

Each image case is (bytes, the phrase its one-line refusal must contain). The cases are small
on disk and expensive only to a reader that believes them; they are built in memory, so a test
can write them wherever it needs.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

import numpy as np
from PIL import Image

# More than any limit Pillow keeps on one decompressed chunk (PngImagePlugin.MAX_TEXT_CHUNK).
INFLATED_BYTES = 64 * 1024 * 1024


def png_bytes(image: Image.Image | np.ndarray, **save_options) -> bytes:
    """An image (or a uint8 array) encoded as PNG."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save_options)
    return buffer.getvalue()


def encoded(image: Image.Image, format_: str, **save_options) -> bytes:
    """An image encoded in any format Pillow writes."""
    buffer = io.BytesIO()
    image.save(buffer, format_, **save_options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_claimed_size(png: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR claims another size (CRC fixed), while its pixel data stays tiny."""
    patched = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + patched + struct.pack(">I", zlib.crc32(patched)) + png[33:]


def with_chunks_after_header(png: bytes, *chunks: bytes) -> bytes:
    """A PNG with extra chunks between IHDR and the pixel data, where metadata goes."""
    return png[:33] + b"".join(chunks) + png[33:]


def _deflated_zeros(n: int = INFLATED_BYTES) -> bytes:
    """n zero bytes, deflated to about n / 1000."""
    compressor = zlib.compressobj(9)
    step = 1024 * 1024
    body = b"".join(compressor.compress(bytes(min(step, n - i))) for i in range(0, n, step))
    return body + compressor.flush()


def _tiny_png() -> bytes:
    return png_bytes(Image.new("L", (8, 8)))


def _text_bomb_png() -> bytes:
    # zTXt: keyword, NUL, compression method 0, deflated text.
    return with_chunks_after_header(
        _tiny_png(), png_chunk(b"zTXt", b"bomb\0\0" + _deflated_zeros())
    )


def _international_text_bomb_png() -> bytes:
    # iTXt: keyword, NUL, compressed flag 1, method 0, language tag, NUL, translated keyword, NUL.
    body = b"bomb\0\x01\0en\0bomb\0" + _deflated_zeros()
    return with_chunks_after_header(_tiny_png(), png_chunk(b"iTXt", body))


def _profile_bomb_png() -> bytes:
    # iCCP: profile name, NUL, method 0, deflated profile.
    return with_chunks_after_header(_tiny_png(), png_chunk(b"iCCP", b"icc\0\0" + _deflated_zeros()))


def _many_text_chunks_png() -> bytes:
    # Each chunk within Pillow's per-chunk limit, together past its limit for all text.
    one = png_chunk(b"zTXt", b"note\0\0" + _deflated_zeros(1024 * 1024 - 1024))
    return with_chunks_after_header(_tiny_png(), *[one] * 80)


def _pixel_bomb_png() -> bytes:
    # A real PNG of 7,000 x 7,000 zeros (49 Mpx, under the pixel limit): a 12 KB file that
    # decodes to 49 MB, a zip bomb the reader must survive by reducing early.
    return png_bytes(Image.new("1", (7_000, 7_000)))


def _gif_claiming_a_huge_screen() -> bytes:
    gif = encoded(Image.new("L", (8, 8)), "GIF")
    return gif[:6] + struct.pack("<HH", 60_000, 60_000) + gif[10:]


def _bmp_claiming_a_huge_size() -> bytes:
    bmp = encoded(Image.new("L", (8, 8)), "BMP")
    return bmp[:18] + struct.pack("<ii", 40_000, 40_000) + bmp[26:]


def _webp_claiming_a_huge_size() -> bytes:
    webp = encoded(Image.new("L", (8, 8)), "WEBP", lossless=True)
    # VP8L: a 0x2f signature byte, then the width and height less one in 14 bits each.
    start = webp.index(b"VP8L") + 9
    (bits,) = struct.unpack("<I", webp[start : start + 4])
    bits = (bits & ~((1 << 28) - 1)) | (16_000 - 1) | ((16_000 - 1) << 14)
    return webp[:start] + struct.pack("<I", bits) + webp[start + 4 :]


def _jpeg_claiming_a_huge_size() -> bytes:
    jpeg = encoded(Image.new("L", (8, 8)), "JPEG")
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + struct.pack(">HH", 65_000, 65_000) + jpeg[sof + 9 :]


def _jpeg_with_broken_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated, so the reader must parse it
    jpeg = encoded(Image.new("L", (32, 32), 255), "JPEG", exif=exif.tobytes())
    start = jpeg.index(b"Exif\0\0") + 6
    # Point the first IFD far beyond the end of the EXIF block.
    return jpeg[: start + 4] + b"\x7f\xff\xff\xff" + jpeg[start + 8 :]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _noise(size: int = 64) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8))


@functools.cache
def hostile_images() -> dict[str, tuple[bytes, str]]:
    """Every hostile image case by name: its bytes and the phrase its refusal must contain."""
    return {
        "PNG text chunk that inflates past Pillow's limit": (_text_bomb_png(), "damaged"),
        "PNG international text chunk bomb": (_international_text_bomb_png(), "damaged"),
        "PNG colour profile bomb": (_profile_bomb_png(), "damaged"),
        "PNG with too much text in all": (_many_text_chunks_png(), "damaged"),
        "PNG pixel zip bomb under the pixel limit": (_pixel_bomb_png(), "no strokes"),
        "PNG claiming 100,000 x 100,000": (
            with_claimed_size(_tiny_png(), 100_000, 100_000),
            "too large",
        ),
        "PNG claiming 0 x 0": (with_claimed_size(_tiny_png(), 0, 0), "not an image"),
        "GIF claiming a 60,000 x 60,000 screen": (_gif_claiming_a_huge_screen(), "too large"),
        "BMP claiming 40,000 x 40,000": (_bmp_claiming_a_huge_size(), "too large"),
        "WebP claiming 16,000 x 16,000": (_webp_claiming_a_huge_size(), "too large"),
        "JPEG claiming 65,000 x 65,000": (_jpeg_claiming_a_huge_size(), "too large"),
        "JPEG with a broken EXIF block": (_jpeg_with_broken_exif(), "no strokes"),
        "truncated PNG": (_truncated(png_bytes(_noise())), "damaged"),
        "truncated JPEG": (_truncated(encoded(_noise(), "JPEG")), "damaged"),
        "truncated GIF": (_truncated(encoded(_noise(), "GIF")), "damaged"),
        "truncated WebP": (_truncated(encoded(_noise(), "WEBP")), "damaged"),
        "truncated BMP": (_truncated(encoded(_noise(), "BMP")), "damaged"),
        "TIFF, a format the app does not read": (encoded(_noise(), "TIFF"), "not an image"),
        "empty file": (b"", "not an image"),
        "random bytes": (np.random.default_rng(1).bytes(4096), "not an image"),
    }


# ---- model files ----------------------------------------------------------------------------


def bytes8_claim(length: int = 1 << 40) -> bytes:
    """A pickle whose BINBYTES8 opcode claims `length` bytes and then ends."""
    return b"\x80\x04\x8e" + struct.pack("<Q", length) + b"short"


def unicode8_claim(length: int = 1 << 40) -> bytes:
    """A pickle whose BINUNICODE8 opcode claims `length` bytes and then ends."""
    return b"\x80\x04\x8d" + struct.pack("<Q", length) + b"short"


def bytearray8_claim(length: int = 1 << 40) -> bytes:
    """A pickle whose BYTEARRAY8 opcode (protocol 5) claims `length` bytes."""
    return b"\x80\x05\x96" + struct.pack("<Q", length) + b"short"


def frame_claim(length: int = 1 << 40) -> bytes:
    """A protocol-4 pickle whose FRAME opcode announces `length` bytes to come."""
    return b"\x80\x04\x95" + struct.pack("<Q", length) + b"N."


def deeply_nested(depth: int = 100_000) -> bytes:
    """A pickle of a list nested `depth` levels deep, under a params dict's 'weights'."""
    # EMPTY_LIST pushes depth lists, APPEND folds each into the one below: no recursion to
    # write it, and the unpickler reads it without recursing either.
    body = b"]" * depth + b"a" * (depth - 1)
    return b"\x80\x04}" + b"\x8c\x07weights" + body + b"s."


def hostile_models(valid: bytes) -> dict[str, bytes]:
    """Model files that must be refused in one line, given the bytes of a valid one."""
    return {
        "BINBYTES8 claiming 1 TiB": bytes8_claim(),
        "BINUNICODE8 claiming 1 TiB": unicode8_claim(),
        "BYTEARRAY8 claiming 1 TiB": bytearray8_claim(),
        "FRAME claiming 1 TiB": frame_claim(),
        "BINBYTES claiming 4 GiB": b"\x80\x03B\xff\xff\xff\xff" + b"short",
        "lists nested 100,000 deep": deeply_nested(),
        "valid file cut in half": valid[: len(valid) // 2],
        "empty file": b"",
    }
