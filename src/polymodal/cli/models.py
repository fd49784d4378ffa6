"""``polymodal models``: list the registered model presets."""

from __future__ import annotations

import json

import typer


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
             "description": p.description}
            for p in presets
        ]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.table import Table

        table = Table(title="polymodal model presets")
        for col in ("name", "kind", "towers / source", "params", "offline"):
            table.add_column(col)
        for r in rows:
            n = r["params"]
            params = f"{n / 1e6:.1f}M" if isinstance(n, int) else "?"
            table.add_row(str(r["name"]), str(r["kind"]), str(r["source"]), params, "yes" if r["offline"] else "no (hub)")
        console.print(table)
        console.print("Load one with `polymodal.load(NAME)`; hub presets offline need a local folder path instead.")
