"""Validated argument types for every parser: a bad value is one line before work starts.

Each function is an ``argparse`` ``type=``: it returns the parsed value or raises
``argparse.ArgumentTypeError`` whose text names what is accepted, so
``flipclock: error: argument --x: ...`` is the whole story. NaN and infinity are refused
everywhere; ranges are inclusive unless the name says otherwise.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

__all__ = [
    "Parser",
    "choice_list",
    "existing_folder",
    "finite_float",
    "float_list",
    "input_file",
    "float_range",
    "folder",
    "fraction",
    "int_range",
    "nonneg_int",
    "positive_float",
    "positive_int",
    "seed",
]


T = TypeVar("T", int, float)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, like every other user error:
    ``flipclock: error: <what> (see 'flipclock build booth --help')``, exit status 2.

    Sub-parsers made with ``add_subparsers`` inherit the class, so every command has it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No prefix abbreviations: `--period` must not quietly mean `--periods`.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"flipclock: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|nan|inf|infinity)",
                    re.IGNORECASE)  # nan/inf parse, to be refused as not finite


def _int(text: str) -> int:
    # Python's int() also takes ' 8', '1_000' and other scripts' digits: a typo should not
    # pass as a number, so only plain ASCII digits are accepted.
    if not _INT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}")
    return int(text)


def _float(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}")
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, not {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in 0 .. 2**32 - 1 (what numpy and torch accept)."""
    value = _int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is an integer from 0 to 4294967295, "
                                         f"not {text!r}")
    return value


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _ranged(convert: Callable[[str], T], lo: T, hi: T, what: str) -> Callable[[str], T]:
    """``convert`` then a check that the value lies in ``[lo, hi]``."""
    def parse(text: str) -> T:
        value = convert(text)
        if not lo <= value <= hi:  # type: ignore[operator]
            raise argparse.ArgumentTypeError(f"expected {what} from {_num(lo)} to "
                                             f"{_num(hi)}, not {text!r}")
        return value
    parse.__name__ = f"{what.split()[-1]}_range({_num(lo)}, {_num(hi)})"
    return parse


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in ``lo .. hi``."""
    return _ranged(_int, lo, hi, "an integer")


def finite_float(text: str) -> float:
    """Any finite number."""
    return _float(text)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return value


def float_range(lo: float, hi: float) -> Callable[[str], float]:
    """A finite number in ``[lo, hi]``."""
    return _ranged(_float, lo, hi, "a number")


def fraction(text: str) -> float:
    """A finite number in [0, 1]."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, not {text!r}")
    return value


def float_list(lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False
               ) -> Callable[[str], tuple[float, ...]]:
    """A non-empty comma list of finite numbers in ``[lo, hi]`` (``(lo, hi]`` with
    ``lo_open``), e.g. ``0.6,0.8,1``."""
    def parse(text: str) -> tuple[float, ...]:
        items = [x.strip() for x in text.split(",")]
        if not text.strip() or any(not x for x in items):
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0.5,1, "
                                             f"not {text!r}")
        values = tuple(_float(x) for x in items)
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"{text!r} names a value twice")
        for v in values:
            if v < lo or v > hi or (lo_open and v == lo):
                left = "(" if lo_open else "["
                raise argparse.ArgumentTypeError(f"each value must lie in {left}{lo:g}, {hi:g}], "
                                                 f"not {v:g}")
        return values
    parse.__name__ = "float_list"
    return parse


def folder(text: str) -> Path:
    """A folder path: it may not exist yet, but it may not be a file (``--cache``,
    ``--data-dir``)."""
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, not an empty name")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; give a folder")
    return path


def input_file(text: str) -> str:
    """An input file: it must exist and be a regular file (a fifo or a device such as
    /dev/zero would block or never end)."""
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file, not an empty name")
    try:
        if not path.exists():
            raise argparse.ArgumentTypeError(f"{text!r} does not exist")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file")
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"{text!r} is not a regular file (a fifo or a "
                                             "device); give a file")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text[:200]!r} cannot be used ({exc.strerror})"
                                         ) from None
    return text


def existing_folder(text: str) -> Path:
    """A folder that must exist (``--data-dir``: the data to read)."""
    path = folder(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist; give the folder that "
                                         "holds the data set files")
    return path


def choice_list(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """A non-empty comma list of distinct names from ``choices``."""
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(x.strip() for x in text.split(",") if x.strip())
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(choices)}; "
                                             f"got {text!r}")
        bad = [x for x in items if x not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, bad))}; choose from "
                                             f"{', '.join(choices)}")
        if len(set(items)) != len(items):
            raise argparse.ArgumentTypeError(f"{text!r} names a value twice")
        return items
    parse.__name__ = "choice_list"
    return parse
