"""CaptioningModel on tiny parts: a 64 px tiny ViT and a 2-layer, width-32 decoder from scratch.

The module's model is trained for a few dozen steps on two captions (one of them a question
with its answer), so generation, save/load and the strategies are checked on a model that
has learnt something, not on noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import polymodal
from polymodal.errors import DataError, ModelError
from polymodal.models.captioner import CaptioningModel
from polymodal.models.decoder import TextDecoder, data_tokenizer
from polymodal.models.outputs import CaptionOutput
from polymodal.models.towers import build_tower
from polymodal.objectives.captioning import CaptioningLoss

RED, BLUE = Image.new("RGB", (64, 64), (230, 20, 20)), Image.new("RGB", (64, 64), (20, 20, 230))
TEXTS = ["a red circle above a blue square", "what colour is it? [SEP] blue"]


def tiny_captioner(seed: int = 0) -> CaptioningModel:
    torch.manual_seed(seed)
    image = build_tower({"modality": "image", "source": "tiny", "name_or_path": "vit"})
    # a vocabulary trained on the captions keeps the output layer (and so each step) small
    tokenizer = data_tokenizer([*TEXTS, "a green star below a yellow cross"])
    decoder = TextDecoder.build("scratch", num_layers=2, hidden_dim=32, num_heads=2, max_length=24, dropout=0.0,
                                tokenizer=tokenizer)
    return CaptioningModel(image, decoder)


def _batch(model: CaptioningModel) -> dict[str, Any]:
    return {"image": model.processors["image"]([RED, BLUE]), "text": model.processors["text"](TEXTS), "id": ["r", "b"]}


@pytest.fixture(scope="module")
def trained() -> tuple[CaptioningModel, list[float]]:
    model = tiny_captioner()
    for p in model.image_tower.encoder.parameters():  # locked, as the example runs it: a cheaper step
        p.requires_grad_(False)
    loss_fn = CaptioningLoss()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    batch = _batch(model)
    losses = []
    model.train()
    for _ in range(30):
        result = loss_fn(model(batch), batch)
        opt.zero_grad()
        result.loss.backward()
        opt.step()
        losses.append(float(result.loss.detach()))
    model.eval()
    return model, losses


def test_text_targets_skip_the_start_token_padding_and_a_prompt(trained: tuple[CaptioningModel, list[float]]) -> None:
    model, _ = trained
    text = model.decoder.preprocess(["a red circle", "what colour is it? [SEP] blue"])
    ids, target = text["input_ids"], text["target_mask"]
    sep = model.decoder.tokenizer.sep_token_id
    # caption: every real token after [CLS] (the final [SEP] included: the model learns to stop)
    assert target[0].tolist() == [False] + [True] * int(text["attention_mask"][0].sum() - 1) + \
        [False] * int((text["attention_mask"][0] == 0).sum())
    # question: only "blue" and the closing [SEP]
    chosen = ids[1][target[1]].tolist()
    assert chosen == [model.decoder.tokenizer.convert_tokens_to_ids("blue"), sep]


def test_teacher_forced_loss_trains_the_model_to_say_its_captions(trained: tuple[CaptioningModel, list[float]]) -> None:
    model, losses = trained
    assert losses[-1] < 0.1 * losses[0], losses[::10]
    out = model(_batch(model))
    assert isinstance(out, CaptionOutput)
    assert out.logits.shape[:2] == out.targets.shape
    # greedy decoding through transformers' generate gives back what it learnt
    assert model.generate([RED]) == [TEXTS[0]]
    assert model.generate([BLUE], "what colour is it?") == ["blue"]


def test_beam_and_sampling_strategies(trained: tuple[CaptioningModel, list[float]]) -> None:
    model, _ = trained
    assert model.generate([RED], strategy="beam", num_beams=3) == [TEXTS[0]]
    a = model.generate([RED, BLUE], strategy="sample", temperature=3.0, seed=1, max_new_tokens=6)
    assert a == model.generate([RED, BLUE], strategy="sample", temperature=3.0, seed=1, max_new_tokens=6)  # seeded
    # a high temperature does sample: another seed draws other words
    assert a != model.generate([RED, BLUE], strategy="sample", temperature=3.0, seed=2, max_new_tokens=6)
    state = torch.random.get_rng_state()
    model.generate([RED], strategy="sample", seed=5, max_new_tokens=2)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is left alone


def test_generation_is_capped_and_checks_its_inputs(trained: tuple[CaptioningModel, list[float]],
                                                    tmp_path: Path) -> None:
    model, _ = trained
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert len(model.decoder.tokenizer(model.generate([RED], max_new_tokens=2)[0],
                                       add_special_tokens=False)["input_ids"]) <= 2
    with pytest.raises(ModelError, match=r"max_new_tokens=99 is outside 1\.\.23"):
        model.generate([RED], max_new_tokens=99)
    with pytest.raises(ModelError, match="prompt 0 is empty"):
        model.generate([RED], "   ")
    with pytest.raises(ModelError, match="prompt 1 is 600 characters"):
        model.generate([RED, BLUE], ["ok?", "x" * 600])
    with pytest.raises(ModelError, match="prompt 0 .* tokens; the decoder's limit is 24"):
        model.generate([RED], "word " * 40)
    with pytest.raises(ModelError, match="strategy 'nucleus'"):
        model.generate([RED], strategy="nucleus")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"image item 1 \('.*broken.png'\)"):
        model.generate([RED, str(broken)])


def test_save_load_round_trip_through_polymodal_load(trained: tuple[CaptioningModel, list[float]],
                                                     tmp_path: Path, find_pickles: Any) -> None:
    model, _ = trained
    model.save_pretrained(tmp_path / "cap")
    loaded = polymodal.load(tmp_path / "cap")
    assert isinstance(loaded, CaptioningModel)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.generate([RED, BLUE], [None, "what colour is it?"]) == [TEXTS[0], "blue"]
    assert find_pickles(tmp_path / "cap") == []


def test_a_tokenizer_that_does_not_fit_the_saved_decoder_is_refused(trained: tuple[CaptioningModel, list[float]],
                                                                    tmp_path: Path) -> None:
    model, _ = trained
    folder = model.save_pretrained(tmp_path / "cap")
    config = folder / "towers" / "text" / "config.json"
    data = json.loads(config.read_text())
    tokens = len(model.decoder.tokenizer)
    data["vocab_size"] = 1000
    config.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=f"vocabulary mismatch: the tokenizer has {tokens} tokens, the decoder's "
                                         "output layer 1000"):
        polymodal.load(folder)


def test_strategies_see_the_decoder_as_the_text_tower() -> None:
    from polymodal.config import TrainConfig
    from polymodal.train.strategies import apply_strategy

    model = tiny_captioner()
    report = apply_strategy(model, TrainConfig(strategy="locked", locked_towers=["image"]))
    names = report.names
    assert not any(n.startswith("towers.image.encoder") for n in names)
    assert any(n.startswith("towers.text.encoder.bert.encoder.layer.1.crossattention") for n in names)
    assert any(n.startswith("bridge.") for n in names)
    model = tiny_captioner()
    report = apply_strategy(model, TrainConfig(strategy="top_k", top_k=1, top_k_towers=["text"]))
    assert all(".layer.1." in n or n.startswith("bridge.") for n in report.names if n.startswith("towers.")
               or n.startswith("bridge.")), report.names


def test_generate_command_captions_and_answers(trained: tuple[CaptioningModel, list[float]], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import click

    from polymodal.cli.main import build_cli

    model, _ = trained
    folder = model.save_pretrained(tmp_path / "cap")
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    RED.save(red)
    BLUE.save(blue)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = build_cli().main(args=["generate", *args], prog_name="polymodal", standalone_mode=False)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        out = capsys.readouterr()
        return int(code or 0), out.out, out.err

    code, out, _ = run(str(folder), "--image", str(red))
    assert code == 0 and out.strip() == f"{red}\t{TEXTS[0]}"
    code, out, _ = run(str(folder), "--image", str(blue), "--prompt", "what colour is it?", "--strategy", "beam")
    assert code == 0 and out.strip().endswith("\tblue")
    code, _, err = run(str(folder), "--image", str(red), "--prompt", "")
    assert code == 2 and "prompt 0 is empty" in err and "Traceback" not in err
    code, _, err = run(str(folder), "--image", str(tmp_path / "missing.png"))
    assert code == 2 and "missing.png" in err


def test_a_scratch_cnn_captioner_round_trips_with_its_batch_norm_statistics(tmp_path: Path) -> None:
    # the example's encoder: builtin-cnn trained with the decoder (strategy full), so its BatchNorm
    # running statistics are part of what a saved captioner must bring back
    torch.manual_seed(0)
    image = build_tower({"modality": "image", "source": "builtin-cnn",
                         "options": {"image_size": 32, "width": 8, "depth": 3}})
    decoder = TextDecoder.build("scratch", num_layers=1, hidden_dim=32, num_heads=2, max_length=16, dropout=0.0,
                                tokenizer=data_tokenizer(TEXTS))
    model = CaptioningModel(image, decoder)
    assert model.bridge.num_tokens == 16  # 32 px halved three times: a 4x4 grid
    model.train()
    batch = _batch(model)
    CaptioningLoss()(model(batch), batch).loss.backward()  # a training pass moves the running statistics
    model.eval()
    model.save_pretrained(tmp_path / "cnn-cap")
    loaded = polymodal.load(tmp_path / "cnn-cap")
    a, b = model.state_dict(), loaded.state_dict()
    assert any("running_mean" in k for k in a) and all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.generate([RED, BLUE], max_new_tokens=6) == model.generate([RED, BLUE], max_new_tokens=6)
