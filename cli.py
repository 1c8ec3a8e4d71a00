"""Run the `recsys` CLI from a checkout (`python cli.py ...`); the installed `recsys` command is the same app."""

from recsys.cli.main import app

if __name__ == "__main__":
    app()
