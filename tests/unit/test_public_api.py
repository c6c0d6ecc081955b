"""The public surface of ``import strato`` is curated, lazy and complete."""

from __future__ import annotations

import subprocess
import sys

import strato


def test_all_names_resolve() -> None:
    assert strato.__all__ == sorted(strato.__all__)
    for name in strato.__all__:
        assert getattr(strato, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        strato.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_is_lazy() -> None:
    """``import strato`` and ``strato.runtime`` pull in none of the heavy libraries."""
    code = (
        "import sys, strato, strato.runtime\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'httpx', 'pydantic', 'fsspec') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
