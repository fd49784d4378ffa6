"""``polymodal export onnx``: one ONNX graph per tower, parity-checked, loadable with polymodal.load."""

from __future__ import annotations

from pathlib import Path

import typer

from polymodal.cli.common import (
    check_model_name,
    console,
    remote_code,
    revision_option,
    trust_option,
    user_errors,
)

export_app = typer.Typer(help="Export a model to another runtime (ONNX for onnxruntime).", no_args_is_help=True)


@export_app.command("onnx")
def onnx_command(
    model: str = typer.Argument(..., help="Preset name, save_pretrained folder or run dir (a dual encoder)."),
    out: Path = typer.Option(..., "--out", help="Folder for the export (graphs, preprocessing assets, config)."),
    int8: bool = typer.Option(False, "--int8", help="Quantize the graphs with onnxruntime's dynamic int8 "
                              "(MatMul/Gemm weights and embedding tables; activations at run time)."),
    min_cosine: float = typer.Option(0.9999, "--min-cosine", help="fp32 parity: least cosine to PyTorch per item."),
    int8_min_cosine: float = typer.Option(0.98, "--int8-min-cosine", help="With --int8: least cosine to PyTorch."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
    trust_remote_code: bool = trust_option(),
    revision: str | None = revision_option(),
) -> None:
    """Export each tower to ONNX and check it against PyTorch with onnxruntime; a miss writes nothing."""
    from polymodal.export.onnx import export_onnx

    check_model_name(model)
    with user_errors(), remote_code(trust_remote_code, revision):
        result = export_onnx(model, out, int8=int8, min_cosine=min_cosine, int8_min_cosine=int8_min_cosine,
                             overwrite=overwrite)
    console.print(result.summary(), highlight=False)
    console.print(f"wrote {result.folder} (load it with polymodal.load({str(result.folder)!r}))", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
