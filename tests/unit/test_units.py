"""Memory sizes and durations as users write them."""

from __future__ import annotations

import pytest

from strato.units import format_bytes, parse_duration, parse_memory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512Mi", 512 * 2**20),
        ("2Gi", 2 * 2**30),
        ("1.5G", 1_500_000_000),
        ("100", 100),
        (4096, 4096),
        ("1 GiB", 2**30),
        ("3k", 3000),
    ],
)
def test_parse_memory(text: str | int, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "2Xi", "-1Gi", "", "Gi"])
def test_bad_memory_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ValueError, match="write it like 512Mi, 2Gi"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("250ms", 0.25), ("45", 45), (12, 12.0)],
)
def test_parse_duration(text: str | int, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "1h30", "m", "", "1x"])
def test_bad_duration_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ValueError, match="write it like 90s, 30m, 1h30m"):
        parse_duration(text)


def test_format_bytes() -> None:
    assert format_bytes(512) == "512B" and format_bytes(3 * 2**20) == "3.0MiB" and format_bytes(2**40) == "1.0TiB"
