"""Image decoding: any file Pillow reads -> an RGB, 8-bit, upright ``PIL.Image``.

Rules (the same for training, evaluation and validation):

- The pixel count in the file header is compared with a per-call limit *before* any pixel
  is decoded, so a decompression bomb costs no memory. Pillow's own global guard
  (``Image.MAX_IMAGE_PIXELS``) is left untouched; whichever limit is tighter wins.
- Zero-byte, truncated, and non-image files raise :class:`DataError` naming the file.
- EXIF orientation is applied; a corrupt EXIF block is ignored (the image is used as stored)
  rather than failing the sample.
- Modes: L/1/I;16/I become grey RGB; LA/RGBA/PA/P-with-transparency are composited on
  white; CMYK/YCbCr/LAB go through Pillow's conversion. 16-bit samples are scaled by
  ``round(v * 255 / 65535)``. Pillow keeps only the high byte of 16-bit colour PNGs, so
  those are decoded a second time for the low byte (see ``_decode_as``).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from polymodal.errors import DataError

DEFAULT_MAX_PIXELS = 64_000_000
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# EXIF orientation -> the Pillow transposition that makes the image upright
_ORIENT: dict[int, list[Image.Transpose]] = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


def _name(src: object) -> str:
    return str(src) if isinstance(src, str | Path) else "<in-memory image>"


def _read_bytes(src: str | Path | bytes) -> bytes:
    if isinstance(src, bytes):
        data = src
    else:
        try:
            data = Path(src).read_bytes()
        except FileNotFoundError:
            raise DataError(f"{src}: file not found") from None
        except OSError as exc:
            raise DataError(f"{src}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise DataError(f"{_name(src)}: empty file (0 bytes)")
    return data


def _orientation(im: Image.Image) -> int:
    """EXIF orientation tag, or 1 when absent or unreadable (corrupt EXIF must not fail a sample)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = im.getexif().get(0x0112, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # Pillow raises assorted types on malformed EXIF
        return 1


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    for op in _ORIENT.get(orientation, []):
        im = im.transpose(op)
    return im


def _to_uint8(values: np.ndarray, full_scale: float) -> np.ndarray:
    scaled = np.rint(values.astype(np.float64) * (255.0 / full_scale))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb`` (H,W,3) and ``alpha`` (H,W) as floats in [0, 1] -> uint8 RGB over white."""
    a = alpha[..., None]
    out = rgb * a + (1.0 - a)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _png_is_16bit(data: bytes) -> bool:
    # IHDR is always the first chunk: byte 24 holds the bit depth
    return data[:8] == _PNG_MAGIC and len(data) > 25 and data[24] == 16


def _decode_as(data: bytes, rawmode: str, name: str) -> np.ndarray:
    """Decode the PNG's pixel data with another Pillow unpacker of the same bytes per pixel.

    PNG un-filtering depends only on bytes per pixel, so e.g. ``RGB;16L`` on big-endian
    16-bit data yields exactly the low bytes that Pillow's default ``RGB;16B`` drops.
    """
    im = Image.open(io.BytesIO(data))
    tile = im.tile[0]
    im.tile = [tile._replace(args=rawmode)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(im).astype(np.uint16)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated image" if "truncated" in str(exc).lower() else f"cannot decode image ({exc})"
        raise DataError(f"{name}: {reason}") from None


def _decode_png16(args: object, data: bytes, name: str) -> Image.Image | None:
    """Full-depth decode of a 16-bit colour or grey+alpha PNG (``args``: Pillow's rawmode
    for it); None when Pillow's own path is already exact."""
    if args in ("RGB;16B", "RGBA;16B"):
        base = str(args)[:-4]
        value = _decode_as(data, base + ";16B", name) * 256 + _decode_as(data, base + ";16L", name)
        colour, alpha = value[..., :3], (value[..., 3] if base == "RGBA" else None)
    elif args == "LA;16B":
        # grey+alpha, 4 bytes per pixel: read the raw bytes through the 8-bit RGBA unpacker
        raw = _decode_as(data, "RGBA", name)
        grey = raw[..., 0] * 256 + raw[..., 1]
        colour, alpha = np.repeat(grey[..., None], 3, axis=2), raw[..., 2] * 256 + raw[..., 3]
    else:  # grey 16-bit opens as I;16 with every bit kept
        return None
    if alpha is None:
        return Image.fromarray(_to_uint8(colour, 65535.0), "RGB")
    rgb = colour.astype(np.float64) / 65535.0
    return Image.fromarray(_composite_on_white(rgb, alpha.astype(np.float64) / 65535.0), "RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert a decoded image of any mode to 8-bit RGB by the rules in the module docstring."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = _to_uint8(np.asarray(im), 65535.0)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    if mode == "F":
        grey = _to_uint8(np.clip(np.asarray(im), 0.0, 1.0), 1.0)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in ("LA", "La", "PA", "RGBa"):
        im, mode = im.convert("RGBA"), "RGBA"
    if mode == "RGBA":
        arr = np.asarray(im).astype(np.float64) / 255.0
        return Image.fromarray(_composite_on_white(arr[..., :3], arr[..., 3]), "RGB")
    return im.convert("RGB")


def load_image(src: str | Path | bytes | Image.Image, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``src`` (path, bytes or an already-open image) into an upright RGB 8-bit image."""
    if isinstance(src, Image.Image):
        return to_rgb(src)
    name = _name(src)
    data = _read_bytes(src)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning is redundant: the per-call limit below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: image refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a recognised image file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: cannot open image ({exc})") from None
    width, height = im.size
    if width * height > max_pixels:
        raise DataError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (possible decompression bomb; raise data.image.max_pixels to allow it)"
        )
    # Pillow's decoding plan, read now: load() clears it
    rawmode = im.tile[0].args if im.tile else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.load()
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: image refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated image" if "truncated" in str(exc).lower() else f"cannot decode image ({exc})"
        raise DataError(f"{name}: {reason}") from None
    # after load(): a PNG's eXIf chunk may follow the pixel data
    orientation = _orientation(im)
    if im.format == "PNG" and _png_is_16bit(data):
        # Pillow keeps only the high byte of 16-bit colour PNGs; decode again at full depth
        full = _decode_png16(rawmode, data, name)
        if full is not None:
            return _apply_orientation(full, orientation)
    return _apply_orientation(to_rgb(im), orientation)


def check_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Decode fully and discard: raises :class:`DataError` when the file cannot be used."""
    load_image(path, max_pixels=max_pixels).close()


__all__ = ["DEFAULT_MAX_PIXELS", "check_image", "load_image", "to_rgb"]
