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
  ``round(v * 255 / 65535)``; 16-bit PNGs (grey, RGB, with alpha) are decoded at full depth
  by ``torchvision.io.decode_png`` because Pillow drops the low byte of 16-bit RGB.
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
    # IHDR is always the first chunk: bytes 24 and 25 hold bit depth and colour type
    return data[:8] == _PNG_MAGIC and len(data) > 25 and data[24] == 16


def _decode_png16(data: bytes, name: str) -> np.ndarray:
    """Full-depth decode of a 16-bit PNG -> uint8 RGB array (H, W, 3)."""
    import torch
    from torchvision.io import ImageReadMode, decode_png

    try:
        tensor = decode_png(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED
        )
    except RuntimeError as exc:
        raise DataError(f"{name}: cannot decode 16-bit PNG ({exc})") from None
    arr = tensor.permute(1, 2, 0).numpy().astype(np.float64) / 65535.0
    channels = arr.shape[2]
    if channels in (1, 2):
        colour = np.repeat(arr[..., :1], 3, axis=2)
    else:
        colour = arr[..., :3]
    if channels in (2, 4):
        return _composite_on_white(colour, arr[..., -1])
    return np.clip(np.rint(colour * 255.0), 0, 255).astype(np.uint8)


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
    orientation = _orientation(im)
    if im.format == "PNG" and _png_is_16bit(data):
        # Pillow opens 16-bit RGB PNGs with the low byte dropped; decode at full depth instead
        return _apply_orientation(Image.fromarray(_decode_png16(data, name), "RGB"), orientation)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.load()
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: image refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated image" if "truncated" in str(exc).lower() else f"cannot decode image ({exc})"
        raise DataError(f"{name}: {reason}") from None
    return _apply_orientation(to_rgb(im), orientation)


def check_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Decode fully and discard: raises :class:`DataError` when the file cannot be used."""
    load_image(path, max_pixels=max_pixels).close()


__all__ = ["DEFAULT_MAX_PIXELS", "check_image", "load_image", "to_rgb"]
