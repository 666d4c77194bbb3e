"""Where the data files in `fixtures/` live, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).parent / "_fixtures"
_CHECKOUT = Path(__file__).parent.parent / "fixtures"


def fixtures_dir() -> Path:
    """The packaged copy in a wheel, else the checkout's `fixtures/` (editable install)."""
    return _PACKAGED if _PACKAGED.is_dir() else _CHECKOUT


def fixture_path(name: str) -> Path:
    return fixtures_dir() / name
