"""Every command's help renders, reads as written (no stray ``%%``), and the registries it
names are the ones the code accepts."""

from __future__ import annotations

import argparse

import pytest

from flipclock.cli import _parser


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        found.append((path, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")

    walk(_parser(), "flipclock")
    return found


PARSERS = _parsers()


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=[p for p, _ in PARSERS])
def test_help_reads_as_written(path: str, parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert "%%" not in text and "%(" not in text, f"{path} --help shows a format escape"
    assert text.startswith(f"usage: {path}")


def test_every_command_has_help() -> None:
    paths = {p for p, _ in PARSERS}
    for command in ("build booth", "build sram", "build netlist", "info", "crosscheck",
                    "errtable", "variation", "stuckat", "demo", "nn timing-study",
                    "flatenn study", "flatenn bench", "harden study"):
        assert f"flipclock {command}" in paths


def test_build_choices_come_from_the_registries() -> None:
    import hw
    from sim.delay import DELAY_MODELS

    booth = dict(PARSERS)["flipclock build booth"]
    choices = {a.dest: tuple(a.choices) for a in booth._actions if a.choices}
    assert choices["tree"] == tuple(hw.TREES)
    assert choices["cpa"] == tuple(hw.CPAS)
    assert choices["delay_model"] == tuple(DELAY_MODELS)
