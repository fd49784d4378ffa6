"""TextToImageModel on tiny parts: the tiny BERT text tower and a two-block UNet at 32 px.

The module's model is trained for a few steps on two flat-colour images, so the training
step, generation, save/load and the prompt checks run on the real diffusers UNet and
schedulers, not on stand-ins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import polymodal
from polymodal.config import GeneratorSpec, load_config
from polymodal.errors import ModelError
from polymodal.models import build_model
from polymodal.models.outputs import DiffusionOutput
from polymodal.models.text_to_image import MAX_PROMPT_CHARS, TextToImageModel, build_unet
from polymodal.models.towers import build_tower
from polymodal.objectives import build_objective
from polymodal.objectives.diffusion import DiffusionLoss

pytest.importorskip("diffusers", reason="text-to-image needs diffusers (the generate extra)")

PROMPTS = ["a red square", "a blue square"]
IMAGES = [Image.new("RGB", (96, 96), (230, 20, 20)), Image.new("RGB", (96, 96), (20, 20, 230))]
SPEC = GeneratorSpec(image_size=32, patch=4, block_out_channels=[48, 48], cross_attention=[False, True],
                     sample_steps=3, max_prompt_tokens=12)


def tiny_model(seed: int = 0) -> TextToImageModel:
    torch.manual_seed(seed)
    return TextToImageModel(build_tower({"modality": "text", "source": "tiny", "name_or_path": "bert"}), SPEC)


@pytest.fixture(scope="module")
def trained() -> tuple[TextToImageModel, list[float]]:
    model = tiny_model()
    batch = {"image": model.pixels(IMAGES), "text": model.processors["text"](PROMPTS), "id": ["r", "b"]}
    loss_fn = DiffusionLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    losses = []
    for _ in range(3):
        result = loss_fn(model(batch), batch)
        opt.zero_grad()
        result.loss.backward()
        opt.step()
        losses.append(float(result.loss.detach()))
    model.eval()
    return model, losses


def test_a_training_step_predicts_noise_and_updates_the_unet(trained: tuple[TextToImageModel, list[float]]) -> None:
    model, losses = trained
    fresh = tiny_model()
    assert all(np.isfinite(losses))
    changed = [n for (n, p), q in zip(model.unet.named_parameters(), fresh.unet.parameters(), strict=True)
               if not torch.equal(p, q)]
    assert changed, "no UNet weight moved"
    batch = {"image": model.pixels(IMAGES), "text": model.processors["text"](PROMPTS)}
    out = model(batch)  # eval mode: validation noise is fixed, so the loss is a number to track
    assert isinstance(out, DiffusionOutput)
    assert out.prediction.shape == out.target.shape == (2, 48, 8, 8)
    assert torch.equal(model(batch).target, out.target)


def test_generate_draws_seeded_images_of_the_models_size(trained: tuple[TextToImageModel, list[float]]) -> None:
    model, _ = trained
    state = torch.random.get_rng_state()
    images = model.generate(PROMPTS, steps=2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone
    assert [im.size for im in images] == [(32, 32), (32, 32)]
    again = model.generate(PROMPTS, steps=2, seed=3)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again, strict=True))
    other = model.generate(PROMPTS, steps=2, seed=4)
    assert not np.array_equal(np.asarray(images[0]), np.asarray(other[0]))


def test_save_load_round_trip_draws_the_same_images(trained: tuple[TextToImageModel, list[float]],
                                                     tmp_path: Path) -> None:
    model, _ = trained
    model.save_pretrained(str(tmp_path / "t2i"))
    loaded = polymodal.load(tmp_path / "t2i")
    assert isinstance(loaded, TextToImageModel)
    assert loaded.spec == model.spec
    a = model.generate(PROMPTS[:1], steps=2, seed=1)[0]
    b = loaded.generate(PROMPTS[:1], steps=2, seed=1)[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_bad_prompts_are_refused_naming_them(trained: tuple[TextToImageModel, list[float]]) -> None:
    model, _ = trained
    with pytest.raises(ModelError, match="prompt 1 is empty"):
        model.generate(["a red square", "  "], steps=2)
    with pytest.raises(ModelError, match=f"prompt 0 .* the limit is {MAX_PROMPT_CHARS}"):
        model.generate(["x" * (MAX_PROMPT_CHARS + 1)], steps=2)
    with pytest.raises(ModelError, match="prompt 0 .* tokens; the limit is 12"):
        model.generate(["a red square " * 6], steps=2)
    with pytest.raises(ModelError, match="steps=0 is outside"):
        model.generate(PROMPTS, steps=0)


def test_run_config_builds_the_model_and_its_objective(tmp_path: Path) -> None:
    cfg_file = tmp_path / "t2i.yaml"
    cfg_file.write_text("model: {preset: tiny-dual, kind: text-to-image, generator: {image_size: 32, patch: 4, "
                        "block_out_channels: [48, 48], cross_attention: [false, true]}}\nobjective: {kind: diffusion}\n",
                        encoding="utf-8")
    cfg = load_config(cfg_file)
    model = build_model(cfg.model)
    assert isinstance(model, TextToImageModel) and list(model.towers) == ["text"]
    assert isinstance(build_objective(cfg.objective, model, {}), DiffusionLoss)
    with pytest.raises(ModelError, match="cannot be halved"):
        TextToImageModel(model.text_tower, GeneratorSpec(image_size=32, patch=8, block_out_channels=[8, 8, 8, 8],
                                                         cross_attention=[False, False, False, True]))


def test_cached_text_tokens_of_different_lengths_stack_padded() -> None:
    from polymodal.train.feature_cache import stack_tokens

    short = (torch.ones(2, 4), torch.tensor([True, True]))
    long = (torch.full((3, 4), 2.0), torch.tensor([True, True, True]))
    batch = stack_tokens([short, long])
    assert batch.values.shape == (2, 3, 4)
    assert batch.mask.tolist() == [[True, True, False], [True, True, True]]
    assert float(batch.values[0, 2].abs().sum()) == 0.0


def test_the_example_config_asks_for_a_64px_generator_on_minilm() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "text_to_image.yaml",
                      ["data.manifest=x/manifest.jsonl"])
    assert (cfg.model.kind, cfg.model.preset, cfg.objective.kind) == ("text-to-image", "minilm", "diffusion")
    assert cfg.model.generator.image_size == 64 and cfg.train.locked_towers == ["text"]


def test_generate_command_writes_a_png_and_refuses_bad_prompts(trained: tuple[TextToImageModel, list[float]],
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import click

    from polymodal.cli.main import build_cli

    model, _ = trained
    folder = model.save_pretrained(tmp_path / "t2i")

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = build_cli().main(args=["generate", *args], prog_name="polymodal", standalone_mode=False)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        out = capsys.readouterr()
        return int(code or 0), out.out, out.err

    target = tmp_path / "out" / "red.png"
    code, out, _ = run(str(folder), "--prompt", "a red square", "--out", str(target), "--steps", "2")
    assert code == 0 and out.strip() == str(target)
    assert Image.open(target).size == (32, 32)
    code, _, err = run(str(folder), "--prompt", "   ", "--steps", "2")
    assert code == 2 and "prompt 0 is empty" in err and "Traceback" not in err
    code, _, err = run(str(folder), "--prompt", "y" * (MAX_PROMPT_CHARS + 5), "--steps", "2")
    assert code == 2 and f"the limit is {MAX_PROMPT_CHARS}" in err
    code, _, err = run(str(folder), "--image", str(target))
    assert code == 2 and "give --prompt TEXT" in err


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_ddim_sampling_with_a_perfect_predictor_draws_the_target(trained: tuple[TextToImageModel, list[float]],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 prediction_type: str) -> None:
    # the sampler loop (schedule, guidance, folding, pixel conversion) is what is checked: the UNet is replaced
    # by the exact noise / velocity / clean image of one known image, so anything but that image back is the
    # loop's fault (or a prediction type the scheduler reads differently from how training builds its target)
    model, _ = trained
    monkeypatch.setattr(model, "spec", model.spec.model_copy(update={"prediction_type": prediction_type}))
    target = model.fold(model.pixels([Image.new("RGB", (32, 32), (200, 40, 90))]))
    sched = model.scheduler("ddpm")
    alphas = sched.alphas_cumprod

    def oracle(noisy: torch.Tensor, steps: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = alphas[steps.long()].view(-1, 1, 1, 1)
        noise = (noisy - a.sqrt() * target) / (1 - a).sqrt()
        return model.training_target(sched, target.expand_as(noisy), noise, steps)

    monkeypatch.setattr(model, "denoise", oracle)
    drawn = np.asarray(model.generate(["a pink square"], steps=4, guidance_scale=3.0)[0]).astype(int)
    assert np.abs(drawn - np.array([200, 40, 90])).max() <= 2


def test_min_snr_weights_cap_the_clean_steps_and_weigh_the_loss(trained: tuple[TextToImageModel, list[float]],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = trained
    sched = model.scheduler()
    steps = torch.tensor([1, 100, 500, 990])
    weights = model.loss_weights(sched, steps)  # v-prediction: min(SNR, 5) / (SNR + 1)
    assert weights is not None and torch.all(weights <= 1) and torch.all(weights > 0)
    assert float(weights[0]) < 0.01 < float(weights[2])  # SNR above gamma: nearly-clean steps are capped
    prediction, target = torch.zeros(2, 48, 8, 8), torch.ones(2, 48, 8, 8)
    weighed = DiffusionLoss()(DiffusionOutput(prediction, target, torch.tensor([1.0, 0.0])), {})
    assert float(weighed.loss) == pytest.approx(0.5) and float(weighed.metrics["noise_mse"]) == pytest.approx(1.0)
    monkeypatch.setattr(model, "spec", model.spec.model_copy(update={"min_snr_gamma": None}))
    assert model.loss_weights(sched, steps) is None


def test_the_pooled_text_reaches_a_unet_whose_attention_is_silenced() -> None:
    # with no attention block and the mid block's attention zeroed, the pooled prompt in the time embedding is
    # the only way the text gets in
    tower = build_tower({"modality": "text", "source": "tiny", "name_or_path": "bert"})
    texts = tower.preprocess(PROMPTS)
    noisy, steps = torch.randn(1, 48, 8, 8).expand(2, -1, -1, -1), torch.tensor([500, 500])
    outputs = {}
    for pooled in (True, False):
        torch.manual_seed(0)
        model = TextToImageModel(tower, SPEC.model_copy(update={"cross_attention": [False, False],
                                                                "pooled_condition": pooled}))
        for block in model.unet.modules():  # the mid block's cross-attention adds nothing to its input
            if type(block).__name__ == "Transformer2DModel":
                nn.init.zeros_(block.proj_out.weight)
                nn.init.zeros_(block.proj_out.bias)
        with torch.no_grad():
            outputs[pooled] = model.denoise(noisy, steps, *model.condition(texts))
    assert not torch.allclose(outputs[True][0], outputs[True][1])
    assert torch.allclose(outputs[False][0], outputs[False][1])


def test_a_model_saved_before_the_prediction_options_loads_as_it_was_trained(tmp_path: Path) -> None:
    import json

    torch.manual_seed(0)
    legacy = TextToImageModel(build_tower({"modality": "text", "source": "tiny", "name_or_path": "bert"}),
                              SPEC.model_copy(update={"prediction_type": "epsilon", "min_snr_gamma": None,
                                                      "pooled_condition": False}))
    folder = legacy.save_pretrained(tmp_path / "old")
    config_file = Path(folder) / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    for key in ("prediction_type", "min_snr_gamma", "pooled_condition"):
        del config["model"]["generator"][key]
    config_file.write_text(json.dumps(config), encoding="utf-8")
    loaded = polymodal.load(folder)
    assert isinstance(loaded, TextToImageModel)
    assert (loaded.spec.prediction_type, loaded.spec.min_snr_gamma, loaded.spec.pooled_condition) == \
        ("epsilon", None, False)


def test_a_first_level_narrower_than_a_folded_cell_is_warned_about() -> None:
    # 4x4 cells are 48 channels; 16 cannot carry them (a real run drew noise this way)
    with pytest.warns(UserWarning, match="fewer than the 48 of a folded 4x4 cell"):
        build_unet(GeneratorSpec(image_size=32, patch=4, block_out_channels=[16, 16], cross_attention=[False, True]), 32)
