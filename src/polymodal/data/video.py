"""Video decoding: a folder of frames or a video file (PyAV) -> ``num_frames`` RGB images.

Frames are sampled uniformly over the clip: indices ``round(linspace(0, n-1, num_frames))``,
so a clip shorter than ``num_frames`` repeats frames rather than failing. A folder of
frames is read in natural order of file names (``frame2`` before ``frame10``).

Validation (``check_video``) decodes *every* frame, not only the ones a run samples: which
frames are sampled depends on the consumer's frame count, and a corrupt later frame found
only in training used to stop a run before its first step.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from polymodal.data.image import DEFAULT_MAX_PIXELS, load_image
from polymodal.data.sources import IMAGE_EXTS
from polymodal.errors import DataError


def sample_indices(total: int, num_frames: int) -> list[int]:
    """Uniformly spaced frame indices covering ``[0, total)``."""
    if total <= 0:
        return []
    return [int(i) for i in np.rint(np.linspace(0, total - 1, num_frames))]


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")),
        key=_natural_key,
    )


def _from_folder(folder: Path, num_frames: int, max_pixels: int) -> list[Image.Image]:
    files = frame_files(folder)
    if not files:
        raise DataError(f"{folder}: frame folder holds no image files")
    return [load_image(files[i], max_pixels=max_pixels) for i in sample_indices(len(files), num_frames)]


def _from_file(path: Path | bytes, num_frames: int) -> list[Image.Image]:
    import io

    import av

    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    name = "<in-memory video>" if isinstance(path, bytes) else str(path)
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.video:
                raise DataError(f"{name}: file has no video stream")
            stream = container.streams.video[0]
            total = int(stream.frames or 0)
            if total <= 0:
                # container does not say; count by demuxing packets (cheap: no decoding)
                total = sum(1 for pkt in container.demux(stream) if pkt.size)
                container.seek(0)
            wanted = sample_indices(total, num_frames)
            picked: dict[int, Image.Image] = {}
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    picked[i] = frame.to_image().convert("RGB")
                if i >= wanted[-1]:
                    break
    except DataError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise DataError(f"{name}: cannot decode video ({exc})") from None
    if not picked:
        raise DataError(f"{name}: video has no decodable frames")
    # a container may over-report its frame count: fall back to the last decoded frame
    last = picked[max(picked)]
    return [picked.get(i, last) for i in wanted]


def load_video(
    path: str | Path | bytes, num_frames: int = 8, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[Image.Image]:
    """Decode ``num_frames`` uniformly sampled frames from a frame folder or a video file (or its bytes)."""
    if isinstance(path, bytes):
        if num_frames < 1:
            raise DataError(f"<in-memory video>: num_frames must be >= 1, got {num_frames}")
        if not path:
            raise DataError("<in-memory video>: empty file (0 bytes)")
        return _from_file(path, num_frames)
    p = Path(path)
    if num_frames < 1:
        raise DataError(f"{p}: num_frames must be >= 1, got {num_frames}")
    if p.is_dir():
        return _from_folder(p, num_frames, max_pixels)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    return _from_file(p, num_frames)


def _decode_all(path: Path) -> int:
    """Decode every frame of a video file; the number decoded."""
    import av

    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise DataError(f"{path}: file has no video stream")
            count = sum(1 for _ in container.decode(container.streams.video[0]))
    except DataError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise DataError(f"{path}: cannot decode video ({exc})") from None
    return count


def check_video(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Decode every frame (of a frame folder or a file); :class:`DataError` names the first bad one."""
    p = Path(path)
    if p.is_dir():
        files = frame_files(p)
        if not files:
            raise DataError(f"{p}: frame folder holds no image files")
        for file in files:
            try:
                load_image(file, max_pixels=max_pixels)
            except DataError as exc:  # the folder is what the manifest names: lead with it
                reason = str(exc).removeprefix(f"{file}: ")
                raise DataError(f"{p}: frame {file.name}: {reason}") from None
        return
    load_video(p, 1)  # the file-level checks (missing, empty, no stream) with their messages
    if _decode_all(p) == 0:
        raise DataError(f"{p}: video has no decodable frames")
