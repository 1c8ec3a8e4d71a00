"""The Typer command groups of the `recsys` CLI; `cli.py` at the top level wires them."""
