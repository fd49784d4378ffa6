"""``polymodal models``: list the registered model presets."""

from __future__ import annotations

import json

import typer

# a dual preset with fresh projections embeds, but its modalities share no space yet
_ALIGNED: dict[object, str] = {True: "yes", False: "no", None: "-"}


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_command(
        as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
    ) -> None:
        """List model presets: name, towers or hub source, size, and whether they work offline."""
        from polymodal.cli.common import console, user_errors
        from polymodal.models.presets import list_presets

        with user_errors():
            presets = list_presets()
        rows = [
            {"name": p.name, "kind": p.kind, "source": p.source, "params": p.params, "offline": p.offline,
             "aligned": p.aligned, "description": p.description}
            for p in presets
        ]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.table import Table

        table = Table(title="polymodal model presets")
        for col in ("name", "kind", "towers / source", "params", "offline", "aligned"):
            table.add_column(col)
        for r in rows:
            n = r["params"]
            params = f"{n / 1e6:.1f}M" if isinstance(n, int) else "?"
            table.add_row(str(r["name"]), str(r["kind"]), str(r["source"]), params, "yes" if r["offline"] else "no (hub)",
                          _ALIGNED[r["aligned"]])
        console.print(table)
        console.print("Load one with `polymodal.load(NAME)`; hub presets offline need a local folder path instead.")
        console.print("aligned no: fresh projections, so zero-shot and retrieval are at chance until "
                      "the model is trained on pairs (e.g. examples/tiny_contrastive.yaml); lite-clip is aligned.")
