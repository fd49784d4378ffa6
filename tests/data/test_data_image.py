import io
from pathlib import Path

import numpy as np
import pytest
from data_corpus import bomb_png, jpeg_bytes, png16, rgb_array
from PIL import Image

from polymodal.data.image import load_image
from polymodal.errors import DataError


def _png(path: Path, im: Image.Image, **kw: object) -> Path:
    im.save(path, format="PNG", **kw)
    return path


def test_rgb_png_is_returned_exactly(tmp_path: Path) -> None:
    arr = rgb_array()
    out = load_image(_png(tmp_path / "a.png", Image.fromarray(arr)))
    assert out.mode == "RGB" and np.array_equal(np.asarray(out), arr)


def test_grey_and_palette(tmp_path: Path) -> None:
    grey = rgb_array()[..., 0]
    out = np.asarray(load_image(_png(tmp_path / "l.png", Image.fromarray(grey, "L"))))
    assert np.array_equal(out, np.repeat(grey[..., None], 3, axis=2))
    palette_im = Image.new("P", (3, 1))
    palette_im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    palette_im.putdata([0, 1, 2])
    out = np.asarray(load_image(_png(tmp_path / "p.png", palette_im)))
    assert out.tolist() == [[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]
    # palette with a transparent entry: index 1 becomes white
    out = np.asarray(load_image(_png(tmp_path / "pt.png", palette_im, transparency=1)))
    assert out.tolist() == [[[255, 0, 0], [255, 255, 255], [0, 0, 255]]]


def _over_white(rgb: np.ndarray, alpha: np.ndarray, scale: float) -> np.ndarray:
    a = alpha.astype(np.float64)[..., None] / scale
    return np.rint((rgb.astype(np.float64) / scale * a + (1 - a)) * 255).astype(np.uint8)


def test_rgba_and_la_composited_on_white(tmp_path: Path) -> None:
    rgba = np.random.default_rng(3).integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
    rgba[0, 0] = [10, 20, 30, 0]  # fully transparent -> white
    rgba[0, 1] = [10, 20, 30, 255]  # opaque -> unchanged
    out = np.asarray(load_image(_png(tmp_path / "rgba.png", Image.fromarray(rgba, "RGBA"))))
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [10, 20, 30]
    assert np.array_equal(out, _over_white(rgba[..., :3], rgba[..., 3], 255.0))
    la = rgba[..., [0, 3]]
    out = np.asarray(load_image(_png(tmp_path / "la.png", Image.fromarray(la, "LA"))))
    assert np.array_equal(out, _over_white(np.repeat(la[..., :1], 3, axis=2), la[..., 1], 255.0))


def test_16bit_png_scaled_by_65535(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    values = rng.integers(0, 65536, size=(4, 5), dtype=np.uint16)
    values[0, :4] = [0, 128, 257, 65535]
    expected_grey = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert expected_grey[0, :4].tolist() == [0, 0, 1, 255]
    # written by Pillow (mode I;16) and by hand
    for name, data in [("pil", None), ("hand", png16(values))]:
        path = tmp_path / f"g16-{name}.png"
        if data is None:
            Image.fromarray(values).save(path)
            assert Image.open(path).mode.startswith("I")
        else:
            path.write_bytes(data)
        out = np.asarray(load_image(path))
        assert np.array_equal(out, np.repeat(expected_grey[..., None], 3, axis=2)), name
    rgb16 = rng.integers(0, 65536, size=(4, 5, 3), dtype=np.uint16)
    rgb16[0, 0] = [255, 256, 383]  # Pillow's high-byte shortcut gives 0,1,1; exact scaling 1,1,1
    (tmp_path / "rgb16.png").write_bytes(png16(rgb16))
    out = np.asarray(load_image(tmp_path / "rgb16.png"))
    assert np.array_equal(out, np.rint(rgb16.astype(np.float64) * 255 / 65535).astype(np.uint8))
    rgba16 = rng.integers(0, 65536, size=(4, 5, 4), dtype=np.uint16)
    (tmp_path / "rgba16.png").write_bytes(png16(rgba16))
    out = np.asarray(load_image(tmp_path / "rgba16.png"))
    assert np.array_equal(out, _over_white(rgba16[..., :3], rgba16[..., 3], 65535.0))


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = np.zeros((16, 32, 4), dtype=np.uint8)
    cmyk[:, :16] = [0, 255, 255, 0]  # red
    cmyk[:, 16:] = [100, 0, 50, 40]
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, "CMYK").save(path, quality=100)
    assert Image.open(path).mode == "CMYK"
    out = np.asarray(load_image(path)).astype(int)
    c, m, y, k = (np.array([0, 100]), np.array([255, 0]), np.array([255, 50]), np.array([0, 40]))
    expected = np.stack([(255 - c) * (255 - k), (255 - m) * (255 - k), (255 - y) * (255 - k)], 1) / 255
    assert np.abs(out[8, 8] - expected[0]).max() <= 4
    assert np.abs(out[8, 24] - expected[1]).max() <= 4


# what EXIF orientation N means (EXIF 2.3): the displayed image is f_N(stored pixels)
_DISPLAY = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: np.rot90(a, k=2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}


def _stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    # search the 8 dihedral arrangements for the one that displays as ``upright``
    candidates = [upright, np.rot90(upright, 1), np.rot90(upright, 2), np.rot90(upright, 3)]
    candidates += [c[:, ::-1] for c in candidates]
    for c in candidates:
        shown = _DISPLAY[orientation](c)
        if shown.shape == upright.shape and np.array_equal(shown, upright):
            return np.ascontiguousarray(c)
    raise AssertionError(orientation)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path: Path, orientation: int) -> None:
    upright = rgb_array(3, 5, seed=orientation)
    stored = _stored_for(upright, orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    png = _png(tmp_path / "o.png", Image.fromarray(stored), exif=exif.tobytes())
    assert np.array_equal(np.asarray(load_image(png)), upright)
    # JPEG: big flat blocks so compression does not blur the check
    big = np.kron(upright, np.ones((8, 8, 1), dtype=np.uint8))
    path = tmp_path / "o.jpg"
    path.write_bytes(jpeg_bytes(_stored_for(big, orientation), exif=exif.tobytes()))
    out = np.asarray(load_image(path)).astype(int)
    assert out.shape == big.shape
    assert np.abs(out[4::8, 4::8] - upright.astype(int)).max() <= 12


def test_corrupt_exif_is_ignored(tmp_path: Path) -> None:
    arr = rgb_array(8, 8)
    path = tmp_path / "bad-exif.jpg"
    path.write_bytes(jpeg_bytes(arr, exif=b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xffgarbage"))
    out = load_image(path)
    assert out.size == (8, 8) and out.mode == "RGB"


def test_bad_files_are_named_errors(tmp_path: Path) -> None:
    full = jpeg_bytes(rgb_array(64, 64))
    cases = {
        "trunc.jpg": (full[: len(full) // 2], "truncated image"),
        "zero.png": (b"", "empty file (0 bytes)"),
        "text.jpg": (b"hello, not an image", "not a recognised image file"),
        "bomb.png": (bomb_png(), "decompression bomb"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as err:
            load_image(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: ") and reason in str(err.value)
    with pytest.raises(DataError, match="file not found"):
        load_image(tmp_path / "absent.png")


def test_per_call_limit_and_inputs(tmp_path: Path) -> None:
    arr = rgb_array(10, 10)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    assert np.array_equal(np.asarray(load_image(buf.getvalue())), arr)
    assert np.array_equal(np.asarray(load_image(Image.fromarray(arr))), arr)
    with pytest.raises(DataError, match="over the limit of 99"):
        load_image(buf.getvalue(), max_pixels=99)
    # a bomb just under Pillow's own error threshold is refused by the per-call limit
    (tmp_path / "b.png").write_bytes(bomb_png(10000, 10000))
    with pytest.raises(DataError, match="10000x10000 = 100,000,000 pixels, over the limit of 64,000,000"):
        load_image(tmp_path / "b.png")


def test_16bit_grey_alpha_png_and_truncated_png(tmp_path: Path) -> None:
    la16 = np.random.default_rng(9).integers(0, 65536, size=(3, 4, 2), dtype=np.uint16)
    (tmp_path / "la16.png").write_bytes(png16(la16))
    out = np.asarray(load_image(tmp_path / "la16.png"))
    assert np.array_equal(out, _over_white(np.repeat(la16[..., :1], 3, axis=2), la16[..., 1], 65535.0))
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    for name, data in [("t8.png", buf.getvalue()), ("t16.png", png16(la16.repeat(20, 0).repeat(20, 1)))]:
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(DataError, match=f"{name}: truncated image"):
            load_image(tmp_path / name)
