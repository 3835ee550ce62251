"""The design folder (sim.design): build settings round trip, and every damaged file is one
DesignError naming the file and the fix, wherever a design is loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flipclock.defaults import RTL_DIR
from sim.design import (
    BoothBuild,
    DesignError,
    NetlistBuild,
    SramBuild,
    load_build_config,
    load_design,
    load_timing,
)
from sim.errors import SimError


@pytest.fixture
def booth8(tmp_path: Path) -> Path:
    """A copy of the committed rtl/booth8 to damage."""
    return Path(shutil.copytree(RTL_DIR / "booth8", tmp_path / "booth8"))


def test_build_settings_round_trip() -> None:
    for cfg in (BoothBuild(width=6, tree="wallace", cpa="kogge_stone"),
                BoothBuild(delay_model="liberty", liberty="/x.lib", tick_ps=2.5),
                SramBuild(depth=16, width=4),
                NetlistBuild(netlist="/n.v", top="top", delay_model="effort", ticks_per_tau=3)):
        data = cfg.to_dict()
        assert data["design"] == cfg.DESIGN and data["format"].startswith("flipclock.build.")
        assert type(cfg).from_dict(json.loads(json.dumps(data))) == cfg
        assert type(cfg).from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delay_model": "liberty", "liberty": "/x.lib", "tick_ps": float("inf")},
         "tick_ps must be a finite number"),
        ({"delay_model": "liberty", "liberty": "/x.lib", "tick_ps": 0.0}, "tick_ps must be"),
        ({"delay_model": "effort", "ticks_per_tau": 0}, "ticks_per_tau must be"),
        ({"delay_model": "magic"}, "Unknown delay model 'magic'"),
        ({"delay_model": "liberty"}, "needs --liberty FILE"),
        ({"delay_model": "effort", "liberty": "/x.lib"}, "needs the built-in gates"),
    ],
)
def test_build_settings_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DesignError, match=message.replace("(", r"\(")):
        BoothBuild(**kwargs)  # type: ignore[arg-type]


def test_committed_designs_load() -> None:
    design = load_design(RTL_DIR / "booth8")
    assert isinstance(design.config, BoothBuild)
    assert design.settings()["netlist_hash"] == design.netlist.content_hash
    assert isinstance(load_build_config(RTL_DIR / "sram256x8"), SramBuild)
    assert load_timing(RTL_DIR / "sram256x8")["bits"] == 256 * 8


def test_settings_without_format_still_load(booth8: Path) -> None:
    """build.json of a flipclock before the Config base (no format/version) still reads."""
    path = booth8 / "build.json"
    data = json.loads(path.read_text())
    data["config"] = {k: v for k, v in data["config"].items() if k not in ("format", "version")}
    path.write_text(json.dumps(data))
    assert load_build_config(booth8) == BoothBuild()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("timing.json", b"", "timing.json' is corrupted"),
        ("timing.json", b"{}", "timing.json' is damaged ('design'"),
        ("timing.json", b"[]", "not a JSON object"),
        ("timing.json", b'{"design": "booth", "config": {}}', "is damaged"),
        ("build.json", b"", "build.json' is corrupted"),
        ("build.json", b'{"config": {"design": "adder"}}', "names no known design"),
        ("build.json", b'{"config": {"design": "booth", "tick_ps": "x"}}', "expected float"),
        ("build.json", b"\xff\xfe\x00binary", "is not text"),
        ("gate.v", b"\x00\xff\xfe binary", "is not text"),
        ("delays.json", b"\xff\xfe binary", "is not text"),
        ("delays.json", b"", "is not valid JSON"),
        ("delays.json", b'{"format": "flipclock-delay-annotation", "version": 1}',
         "has no 'model' entry"),
    ],
)
def test_damaged_files_are_one_line(booth8: Path, name: str, content: bytes,
                                    message: str) -> None:
    (booth8 / name).write_bytes(content)
    with pytest.raises(DesignError) as info:
        load_design(booth8)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["abc", None, -1, 1.5, True, [1]])
def test_delays_that_are_not_tick_counts(booth8: Path, value: object) -> None:
    path = booth8 / "delays.json"
    data = json.loads(path.read_text())
    cell = next(iter(data["delays"]))
    pin = next(iter(data["delays"][cell]))
    data["delays"][cell][pin] = [value, 1]
    path.write_text(json.dumps(data))
    with pytest.raises(DesignError, match="delay annotation is damaged"):
        load_design(booth8)


def test_missing_files_and_wrong_kinds(booth8: Path, tmp_path: Path) -> None:
    (booth8 / "gate.v").unlink()
    with pytest.raises(DesignError, match="gate.v' is missing"):
        load_design(booth8)
    with pytest.raises(DesignError, match="is an SRAM build"):
        load_design(RTL_DIR / "sram256x8")
    with pytest.raises(DesignError, match="is not a flipclock build"):
        load_design(tmp_path)
    assert issubclass(DesignError, SimError)  # the CLI prints it as one line


def test_delays_of_another_netlist(booth8: Path) -> None:
    shutil.copyfile(RTL_DIR / "booth8_ks" / "delays.json", booth8 / "delays.json")
    with pytest.raises(DesignError, match="re-run annotate"):
        load_design(booth8)


def test_output_named_as_an_input_says_so() -> None:
    with pytest.raises(DesignError, match=r"^Port 'p' is named both as an input \(--inputs "
                                          r"a,p\) and as the output \(--output p\)"):
        NetlistBuild(netlist="/n.v", inputs=("a", "p"), output="p")
    with pytest.raises(DesignError, match=r"^--output names the output port, not ''$"):
        NetlistBuild(netlist="/n.v", output="")
