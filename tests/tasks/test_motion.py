"""The motion task on tiny models: a frame-averaging video tower cannot see direction (a clip and
its reverse embed alike), a temporal layer can; the task swaps directions into each caption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from polymodal.config import ModelConfig
from polymodal.errors import DataError
from polymodal.models import build_model
from polymodal.tasks import evaluate
from polymodal.tasks.motion import swap_word


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.data.builtin import make_dataset

    return make_dataset("moving-shapes", tmp_path_factory.mktemp("moving") / "data", n=40).parent  # type: ignore[no-any-return]


def _model(pooling: str, differences: bool = False) -> Any:
    torch.manual_seed(0)
    video = {"modality": "video", "source": "builtin-cnn", "num_frames": 4, "temporal_pooling": pooling,
             "frame_differences": differences, "options": {"image_size": 32, "width": 8}}
    text = {"modality": "text", "source": "builtin-text", "options": {"dim": 16, "layers": 1, "heads": 2}}
    cfg = ModelConfig(preset=None, kind="dual", towers=[video, text], embed_dim=16)
    return build_model(cfg).eval()


def _frames(folder: Path) -> list[Any]:
    from PIL import Image

    return [Image.open(p).convert("RGB") for p in sorted(folder.glob("*.png"))]


def test_frame_pooling_is_blind_to_time_and_a_temporal_layer_is_not(clips: Path) -> None:
    row = json.loads((clips / "manifest.jsonl").read_text().splitlines()[0])
    frames = _frames(clips / row["video"])[::2]  # the tower's 4 frames, so it samples none away
    mean, temporal = _model("mean"), _model("transformer")
    for model, blind in ((mean, True), (temporal, False)):
        fwd = model.encode_video([frames], bf16=False)  # float32: bf16 rounding would hide the equality
        back = model.encode_video([frames[::-1]], bf16=False)
        assert torch.allclose(fwd, back, atol=1e-5) is blind


def test_frame_differences_let_even_the_mean_see_time_and_survive_a_save(clips: Path, tmp_path: Path) -> None:
    import polymodal

    row = json.loads((clips / "manifest.jsonl").read_text().splitlines()[0])
    frames = _frames(clips / row["video"])[::2]
    model = _model("mean", differences=True)
    fwd = model.encode_video([frames], bf16=False)
    assert not torch.allclose(fwd, model.encode_video([frames[::-1]], bf16=False), atol=1e-4)
    model.save_pretrained(tmp_path / "m")
    loaded = polymodal.load(tmp_path / "m")
    assert loaded.tower("video").encoder.frame_differences
    assert torch.allclose(loaded.encode_video([frames], bf16=False), fwd, atol=1e-5)


def test_motion_task_scores_every_direction_of_the_same_object(clips: Path) -> None:
    res = evaluate(_model("mean"), "motion", clips / "manifest.jsonl", "test", bootstrap=50, cache=False)
    rows = [json.loads(x) for x in (clips / "manifest.jsonl").read_text().splitlines()]
    test = [r for r in rows if r["split"] == "test"]
    assert res.metrics["direction_acc"].n == len(test) and res.details["chance"] == 0.25
    held = [r for r in test if not r["meta"]["combo_seen"]]
    assert held and res.details["by_group"]["combo_seen=False"]["n"] == len(held)
    # frame averaging: a clip moving left and the same clip moving right embed alike, so
    # opposite directions are told apart only by the captions' own bias, not the clip
    assert 0.0 <= res.metrics["opposite_acc"].value <= 1.0
    assert np.isfinite(res.metrics["direction_acc"].low)


def test_held_out_combinations_never_reach_training(clips: Path) -> None:
    from polymodal.data.builtin.moving_shapes import HELD_OUT_COMBOS

    for r in map(json.loads, (clips / "manifest.jsonl").read_text().splitlines()):
        assert ((r["color"], r["shape"]) in HELD_OUT_COMBOS) == (not r["meta"]["combo_seen"])
        assert r["meta"]["combo_seen"] or r["split"] == "test"


def test_a_caption_without_its_direction_is_named() -> None:
    assert swap_word("a red star moving left", "left", "right", "row 1") == "a red star moving right"
    with pytest.raises(DataError, match="row 7: caption 'a red star' does not contain its direction 'left'"):
        swap_word("a red star", "left", "right", "row 7")


def test_report_shows_the_clips_as_frame_strips(clips: Path, tmp_path: Path) -> None:
    from polymodal.report import Report

    res = evaluate(_model("transformer"), "motion", clips / "manifest.jsonl", "test", bootstrap=0, cache=False)
    assert len(res.details["clips"]) == min(8, res.details["n"])
    page = Report("motion").add_result(res).write(tmp_path / "report.html").read_text()
    assert "Clips · " in page and page.count("data:image/png;base64,") == 1
