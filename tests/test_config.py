"""The one config base: versioned JSON round trip, refusals in one line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from sim.config import Config, ConfigError
from sim.errors import SimError


@dataclass(frozen=True)
class Inner(Config):
    FORMAT: ClassVar[str] = "test.inner"
    scale: float = 1.0
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class Outer(Config):
    FORMAT: ClassVar[str] = "test.outer"
    VERSION: ClassVar[int] = 3
    periods: tuple[int, ...] = (28, 32)
    pairs: tuple[tuple[int, int], ...] = ((1, -2),)
    label: str | None = None
    port: int | str = "a"
    inner: Inner = field(default_factory=Inner)
    folder: Path = Path("out")

    def __post_init__(self) -> None:
        if any(p < 1 for p in self.periods):
            raise ConfigError(f"periods must be positive, not {self.periods}")


def test_round_trip_keeps_types() -> None:
    cfg = Outer(periods=(5, 7), pairs=((3, 4), (-1, 0)), label="x", port=2,
                inner=Inner(scale=2, names=("p", "q")), folder=Path("a/b"))
    back = Outer.from_json(cfg.to_json())
    assert back == cfg
    assert isinstance(back.periods, tuple) and isinstance(back.pairs[0], tuple)
    assert isinstance(back.inner.scale, float) and isinstance(back.folder, Path)
    data = json.loads(cfg.to_json())
    assert data["format"] == "test.outer" and data["version"] == 3
    assert data["inner"]["format"] == "test.inner"


def test_equal_configs_give_equal_text() -> None:
    assert Outer().to_json() == Outer().to_json()
    assert Outer().to_json() != Outer(label="other").to_json()


@pytest.mark.parametrize(("text", "message"), [
    ('{"format": "test.inner"}', "settings of format 'test.inner' are not a Outer"),
    ('{"format": "test.outer", "version": 2}', "of version 2 were written by another"),
    ('{"format": "test.outer", "version": 3, "speed": 1}', "unknown Outer settings: speed"),
    ('{"periods": "28"}', "expected a list"),
    ('{"periods": [0]}', "periods must be positive"),
    ('{"label": 5}', "does not fit"),
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_refusals_are_one_line_user_errors(text: str, message: str) -> None:
    with pytest.raises(SimError) as exc:
        Outer.from_json(text)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_nan_is_not_written() -> None:
    with pytest.raises(ValueError):
        Inner(scale=float("nan")).to_json()
