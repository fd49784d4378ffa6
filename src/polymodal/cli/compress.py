"""``polymodal compress``: int8 quantization, pruning or distillation into a normal model folder."""

from __future__ import annotations

from pathlib import Path

import typer

from polymodal.cli.common import (
    check_model_name,
    console,
    fail,
    remote_code,
    revision_option,
    trust_option,
    user_errors,
)

METHOD_HELP = ("int8-dynamic (int8 weights + dynamic int8 activations in linear layers, int8 embedding tables), "
               "prune (--sparsity of MLP/conv channels removed; --unstructured zeroes single weights), "
               "distill (a smaller --student trained on --data to match the model's embeddings).")


def compress_command(
    model: str = typer.Argument(..., help="Preset name, save_pretrained folder or run dir."),
    method: str = typer.Option(..., "--method", "-m", help=METHOD_HELP),
    out: Path = typer.Option(..., "--out", help="Folder to write the compressed model to (a normal model folder)."),
    data: Path | None = typer.Option(
        None, "--data", help="distill: manifest of unlabeled items to train the student on; prune: image-text "
                             "pairs for the recovery fine-tune."),
    towers: str | None = typer.Option(None, "--towers", help="Comma-separated modalities to compress (default: all)."),
    strict: bool = typer.Option(
        False, "--strict", help="Fail on a layer the method cannot compress (default: name it and keep it as is)."),
    sparsity: float = typer.Option(0.3, "--sparsity", min=0.0, max=0.95,
                                   help="prune: fraction of channels (or weights, with --unstructured) removed."),
    unstructured: bool = typer.Option(False, "--unstructured", help="prune: zero single weights by magnitude "
                                      "(smaller after compression only; no speed-up) instead of removing channels."),
    steps: int = typer.Option(0, "--steps", min=0, help="prune: recovery fine-tune steps on --data; distill: "
                              "training steps (0: the method's default, 200)."),
    student: str | None = typer.Option(None, "--student", help="distill: the student's preset or folder "
                                       "(default: tiny-dual; its projections are resized to the teacher's width)."),
    student_layers: str | None = typer.Option(
        None, "--student-layers", help="distill: cut the student from the teacher itself, keeping these transformer "
                                       "layers of a tower with their weights, e.g. text=0,2,4 (several: "
                                       "'text=0,2,4;image=0,6')."),
    int8_embeddings: bool = typer.Option(True, "--int8-embeddings/--fp32-embeddings",
                                         help="int8-dynamic: store embedding tables as int8 too."),
    report: bool = typer.Option(False, "--report", help="Also measure the original and the result (size, params, "
                                "latency at batch 1, throughput at batch 64, cosine to the original, accuracy on "
                                "--eval-data) into OUT/tradeoff/ (markdown, JSON, HTML with plots)."),
    eval_data: Path | None = typer.Option(None, "--eval-data", help="With --report: a labelled manifest for zero-shot "
                                          "accuracy (e.g. from `polymodal data make fashion-mnist`)."),
    retrieval_data: Path | None = typer.Option(None, "--retrieval-data", help="With --report: a captioned manifest "
                                               "for retrieval R@1 (e.g. `polymodal data make shapes`)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
    seed: int = typer.Option(0, "--seed", help="Seed for distillation / recovery training."),
    trust_remote_code: bool = trust_option(),
    revision: str | None = revision_option(),
) -> None:
    """Compress MODEL into --out; the result loads wherever a model loads (eval, compare, embed, serve)."""
    from polymodal.compress.api import METHODS, CompressOptions, compress

    check_model_name(model)
    if method not in METHODS:
        fail(f"unknown --method {method!r}; choose from {', '.join(sorted(METHODS))}")
    opts = CompressOptions(
        towers=[t.strip() for t in towers.split(",") if t.strip()] if towers else None, strict=strict,
        embeddings=int8_embeddings, sparsity=sparsity, structured=not unstructured, data=data, steps=steps,
        student=student, seed=seed)
    if student_layers is not None:
        from polymodal.compress.student import parse_layers

        with user_errors():
            opts.student_layers = parse_layers(student_layers)
    for flag, path in (("--eval-data", eval_data), ("--retrieval-data", retrieval_data), ("--data", data)):
        if path is not None and not path.exists():
            fail(f"{flag} {path}: no such file or folder")
        if path is not None and flag != "--data" and not report:
            fail(f"{flag} is for --report; add --report or drop it")
    with user_errors(), remote_code(trust_remote_code, revision):
        result = compress(model, method, out, opts, overwrite=overwrite)
    console.print(result.summary, highlight=False)
    if report:
        import tempfile

        from polymodal.compress.report import tradeoff

        with user_errors(), tempfile.TemporaryDirectory() as tmp:
            source = Path(model)
            if not source.is_dir():  # a preset: measured as a saved folder, as the result is
                from polymodal.models.loading import load_model

                source = load_model(model).save_pretrained(Path(tmp) / "original")
            elif not (source / "config.json").is_file() and (source / "model").is_dir():
                source = source / "model"  # a run dir
            table = tradeoff({"original": source, method: result.folder}, result.folder / "tradeoff",
                             zeroshot=eval_data, retrieval=retrieval_data)
        from polymodal.compress.report import to_markdown

        console.print(to_markdown(table), highlight=False)
        console.print(f"wrote {result.folder / 'tradeoff' / 'tradeoff.html'}", highlight=False)
    console.print(f"wrote {result.folder} (load it with polymodal.load({str(result.folder)!r}))", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("compress")(compress_command)
