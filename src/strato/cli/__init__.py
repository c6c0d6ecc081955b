"""The ``strato`` command line: a thin layer over the SDK (Typer + Rich)."""
