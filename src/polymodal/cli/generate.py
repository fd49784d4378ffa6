"""``polymodal generate MODEL --image PATH [--prompt TEXT]``: a quick look at what a captioning
model says about an image (a caption, or with ``--prompt`` an answer); a thin shell over
``CaptioningModel.generate``. On a text-to-image model, ``polymodal generate MODEL --prompt TEXT``
draws the prompt and writes a PNG (``TextToImageModel.generate``)."""

from __future__ import annotations

from pathlib import Path

import typer

from polymodal.cli.common import fail, user_errors


def generate_command(
    model: str = typer.Argument(..., metavar="MODEL", help="Run dir or save_pretrained folder of a captioning model."),
    image: list[Path] = typer.Option([], "--image", show_default=False, help="An image file (repeat for several)."),
    prompt: str | None = typer.Option(None, "--prompt", help="A question or prefix the decoder continues (one for "
                                                             "every image); without it the model captions."),
    strategy: str = typer.Option("greedy", "--strategy", help="greedy, beam or sample."),
    num_beams: int = typer.Option(4, "--num-beams", help="Beams for --strategy beam."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens",
                                              help="Cap on generated tokens (at most the decoder's max_length)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature (--strategy sample)."),
    seed: int = typer.Option(0, "--seed", help="Seed for --strategy sample (and for drawing an image)."),
    out: Path | None = typer.Option(None, "--out", help="Text-to-image: the PNG to write (default "
                                                       "./generated-<seed>.png)."),
    steps: int | None = typer.Option(None, "--steps", help="Text-to-image: sampler steps (default: the model's)."),
    guidance: float | None = typer.Option(None, "--guidance", help="Text-to-image: classifier-free guidance scale."),
) -> None:
    """Caption images (or answer --prompt about them) with a trained captioning model, or draw
    --prompt with a text-to-image model."""
    with user_errors():
        from polymodal.errors import ModelError
        from polymodal.models.loading import load_model

        loaded = load_model(model)
        if getattr(loaded, "generates", None) == "image":
            if prompt is None or image:
                raise ModelError(f"{model} draws images from text: give --prompt TEXT (and no --image)")
            target = out or Path(f"generated-{seed}.png")
            drawn = loaded.generate([prompt], steps=steps, guidance_scale=guidance, seed=seed)[0]  # type: ignore[operator]
            target.parent.mkdir(parents=True, exist_ok=True)
            drawn.save(target)
            typer.echo(str(target))
            return
    if not image:
        fail("give at least one --image PATH")
    with user_errors():
        if not callable(getattr(loaded, "generate", None)) or "text" not in getattr(loaded, "towers", {}):
            raise ModelError(f"{model} ({type(loaded).__name__}) has no text decoder to generate with; train one "
                             "with `model.kind: captioner` (examples/captioning.yaml)")
        texts = loaded.generate([str(p) for p in image], prompt, strategy=strategy,  # type: ignore[arg-type]
                                num_beams=num_beams, max_new_tokens=max_new_tokens, temperature=temperature,
                                seed=seed)
    for path, text in zip(image, texts, strict=True):
        typer.echo(f"{path}\t{text}")  # a tab kept as a tab (rich would expand it): cut -f2 works


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
