"""``python -m polymodal``: the same CLI as the ``polymodal`` script (useful with PYTHONPATH or no script on PATH)."""

from polymodal.cli.main import main

main()
