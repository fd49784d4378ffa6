"""Distillation: a tiny-dual student trained to match a wider, differently seeded teacher's embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import polymodal
from polymodal.compress.api import CompressOptions, compress
from polymodal.errors import ModelError

STEPS = 20


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wider 3-layer tiny dual encoder (64-d embeddings, seed 1): unlike tiny-dual in weights and width."""
    from polymodal.config import ModelConfig, TowerSpec
    from polymodal.models.build import build_model

    opts = {"width": 64, "layers": 3, "seed": 1}
    cfg = ModelConfig(preset=None, embed_dim=64, towers=[
        TowerSpec(modality="image", source="tiny", name_or_path="vit", options={**opts, "image_size": 64}),
        TowerSpec(modality="text", source="tiny", name_or_path="bert", options=opts)])
    torch.manual_seed(1)
    return build_model(cfg).save_pretrained(tmp_path_factory.mktemp("teacher") / "t")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def distilled(teacher: Path, shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("distill") / "student"
    compress(str(teacher), "distill", out, CompressOptions(data=shapes, steps=STEPS, seed=0))
    return out


def _mean_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b).mean())


def test_student_moves_towards_the_teacher(teacher: Path, distilled: Path, shapes: Path) -> None:
    from polymodal.data.sources import load_manifest

    manifest = load_manifest(shapes)
    rows = [r for r in manifest.rows if r.get("split") == "test"]  # rows distillation never saw
    images = [str(manifest.root / r["image"]) for r in rows]
    texts = [r["text"] for r in rows]
    t, s = polymodal.load(teacher), polymodal.load(distilled)
    assert s.embed_dim == t.embed_dim == 64
    assert sum(p.numel() for p in s.parameters()) < sum(p.numel() for p in t.parameters())
    entry = s.transforms[-1]
    assert entry["kind"] == "distilled" and entry["teacher"] == str(teacher) and entry["steps"] == STEPS
    # before: tiny-dual with its projections resized to 64 (what the method starts from)
    from polymodal.models.build import build_preset

    start = build_preset("tiny-dual")
    for tower in start.towers.values():
        tower.set_projection(64)
    for modality, items in (("image", images), ("text", texts)):
        target = t.encode(modality, items)
        before, after = _mean_cos(start.encode(modality, items), target), _mean_cos(s.encode(modality, items), target)
        assert after > before + 0.2, (modality, before, after)
    assert entry["cosine_after"]["image"] > entry["cosine_before"]["image"]


def test_output_evaluates_and_cli(distilled: Path, shapes: Path, teacher: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from polymodal.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(distilled), "--task", "retrieval", "--data", str(shapes)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "cli"  # the CLI run takes a student cut from the teacher (the default student: `distilled`)
    res = runner.invoke(app, ["compress", str(teacher), "--method", "distill", "--data", str(shapes),
                              "--steps", "2", "--student-layers", "text=0,2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "mean cosine to the teacher" in res.output
    student = polymodal.load(out)
    entry = student.transforms[-1]
    assert entry["kind"] == "distilled" and entry["student_layers"] == {"text": [0, 2]}
    assert len(student.tower("text").blocks()) == 2 and len(student.tower("image").blocks()) == 3
    # it starts as the teacher minus one text layer, far closer than a random-init student
    assert entry["cosine_before"]["image"] > 0.999 and entry["cosine_before"]["text"] > 0.5
    assert entry["cosine_after"]["image"] > 0.999  # the tower the cut left whole stayed locked


def test_student_cut_from_the_teachers_layers_holds_those_layers(teacher: Path, tmp_path: Path) -> None:
    from polymodal.compress.student import cut_student, parse_layers

    t = polymodal.load(teacher)
    student = cut_student(t, parse_layers("text=0,2;image=1"))
    loaded = polymodal.load(student.save_pretrained(tmp_path / "cut"))
    assert loaded.tower("text").encoder.model.config.num_hidden_layers == 2
    pairs = [("text", 0, 0), ("text", 1, 2), ("image", 0, 1)]  # (modality, student layer, teacher layer)
    for modality, mine, theirs in pairs:
        a = loaded.tower(modality).blocks()[mine].state_dict()
        b = t.tower(modality).blocks()[theirs].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (modality, mine, theirs)
    mine_all, theirs_all = loaded.tower("text").state_dict(), t.tower("text").state_dict()
    rest = [k for k in mine_all if ".layer." not in k]  # embeddings, pooler, projection: the teacher's
    assert rest and all(torch.equal(mine_all[k], theirs_all[k]) for k in rest)
    assert len(t.tower("text").blocks()) == 3  # the teacher is left whole
    with pytest.raises(ModelError, match=r"0\.\.2 \(the teacher's text tower has 3 layers\)"):
        cut_student(t, {"text": [0, 3]})
    with pytest.raises(ModelError, match="the teacher has image, text"):
        cut_student(t, {"audio": [0]})
    with pytest.raises(ModelError, match="MODALITY=I,J,K"):
        parse_layers("text:0,2")


def test_clear_errors(teacher: Path, shapes: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unlabeled items"):
        compress(str(teacher), "distill", tmp_path / "a", CompressOptions())
    with pytest.raises(ModelError, match="audio tower"):
        compress(str(teacher), "distill", tmp_path / "b", CompressOptions(data=shapes, student="tiny-audio-text"))
    with pytest.raises(ModelError, match="not both"):
        compress(str(teacher), "distill", tmp_path / "c",
                 CompressOptions(data=shapes, student="tiny-dual", student_layers={"text": [0]}))


def test_embed_distill_loss_is_zero_at_the_teacher_and_names_missing_rows(tmp_path: Path) -> None:
    from polymodal.config import EmbedDistillConfig
    from polymodal.models.build import build_preset
    from polymodal.models.outputs import EmbeddingOutput
    from polymodal.objectives import build_objective
    from polymodal.objectives.embed_distill import save_targets

    g = torch.Generator().manual_seed(0)
    emb = {m: torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1) for m in ("image", "text")}
    path = save_targets(tmp_path / "t.pt", "teacher", {m: (["a", "b", "c", "d"], e) for m, e in emb.items()})
    loss = build_objective(EmbedDistillConfig(targets=str(path)), build_preset("tiny-dual"))
    at_teacher = loss(EmbeddingOutput({m: e[[2, 0]] for m, e in emb.items()}), {"id": ["c", "a"]})
    assert float(at_teacher.loss) < 1e-5 and float(at_teacher.metrics["teacher_cos_text"]) > 0.9999
    off = loss(EmbeddingOutput({m: e[[0, 2]] for m, e in emb.items()}), {"id": ["c", "a"]})
    assert float(off.loss) > 0.1
    with pytest.raises(ModelError, match="row z: no teacher"):
        loss(EmbeddingOutput(emb), {"id": ["a", "b", "c", "z"]})
