"""Bad input to every subcommand is refused in one line, with exit status 2, before work.

A fast, in-process sample of the hostile audit (``scripts/audit_cli.py`` runs some 350
cases in subprocesses): out-of-range, NaN and infinite numbers, empty strings, damaged
design folders, histograms and tables, foreign or impossible output folders.  Each case
must exit with status 2 and print one error line (``flipclock: error: ...``, or argparse's
usage block and its one error line), print nothing on stdout, name what is wrong, and
leave no file behind.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "rtl" / "booth8"
SRAM = ROOT / "rtl" / "sram256x8"
JUNK = bytes((i * 151 + 7) % 256 for i in range(2048))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Damaged inputs shared by the cases (never written to)."""
    f = tmp_path_factory.mktemp("inputs")
    for name, damage in {"bin_delays": ("delays.json", JUNK), "trunc_gate": ("gate.v", None),
                         "text_delay": ("delays.json", "text")}.items():
        d = f / name
        shutil.copytree(DESIGN, d)
        path = d / damage[0]
        if damage[1] is None:
            path.write_bytes(path.read_bytes()[:3000])
        elif damage[1] == "text":
            doc = json.loads(path.read_text())
            cell = next(iter(doc["delays"]))
            pin = next(iter(doc["delays"][cell]))
            doc["delays"][cell][pin][0] = "fast"
            path.write_text(json.dumps(doc))
        else:
            path.write_bytes(JUNK)
    (f / "empty.npy").write_bytes(b"")
    (f / "nan.csv").write_text("nan\n" * 256)
    (f / "short.csv").write_text("1\n1\n")
    (f / "junk.parquet").write_bytes(JUNK)
    (f / "afile").write_text("a file, not a folder\n")
    fake = f / "fake_marker"  # a user's folder with an empty .flipclock: not ours
    fake.mkdir()
    (fake / ".flipclock").write_text("")
    (fake / "notes.txt").write_text("precious\n")
    shutil.copytree(DESIGN, f / "design_copy")
    import os

    os.mkfifo(f / "fifo.lib")
    (f / "loop").symlink_to(f / "loop")
    return f


D = str(DESIGN)
OUT = ["--out", "{out}"]
CASES: list[tuple[str, list[str], str]] = [
    # (id, argv with {in}/{out}/{user} placeholders, text the error line must contain)
    ("errtable-period-0", ["errtable", D, "--period", "0", *OUT], "--period"),
    ("errtable-frac-nan", ["errtable", D, "--period-frac", "nan", *OUT], "--period-frac"),
    ("errtable-frac-inf", ["errtable", D, "--period-frac", "inf", *OUT], "--period-frac"),
    ("errtable-frac-0", ["errtable", D, "--period-frac", "0", *OUT], "--period-frac"),
    ("errtable-frac-empty", ["errtable", D, "--period-frac", "", *OUT], "--period-frac"),
    ("errtable-no-period", ["errtable", D, *OUT], "period"),
    ("errtable-prev-empty", ["errtable", D, "--period", "30", "--prev", "{in}/empty.npy", *OUT],
     "empty.npy"),
    ("errtable-prev-nan", ["errtable", D, "--period", "30", "--prev", "{in}/nan.csv", *OUT],
     "histogram"),
    ("errtable-prev-short", ["errtable", D, "--period", "30", "--prev", "{in}/short.csv", *OUT],
     "histogram"),
    ("errtable-dask", ["errtable", D, "--period", "30", "--dask", "not an address", *OUT],
     "--dask"),
    ("errtable-out-file", ["errtable", D, "--period", "30", "--out", "{in}/afile"], "afile"),
    ("errtable-out-under-file", ["errtable", D, "--period", "30", "--out", "{in}/afile/sub"],
     "afile"),
    ("errtable-out-users", ["errtable", D, "--period", "30", "--out", "{user}"], "--force"),
    ("errtable-binary-delays", ["errtable", "{in}/bin_delays", "--period", "30", *OUT],
     "delays.json"),
    ("errtable-truncated-netlist", ["errtable", "{in}/trunc_gate", "--period", "30", *OUT],
     "gate.v"),
    ("errtable-text-delay", ["errtable", "{in}/text_delay", "--period", "30", *OUT], "delay"),
    ("errtable-sram", ["errtable", str(SRAM), "--period", "30", *OUT], "SRAM"),
    ("crosscheck-no-simulators", ["crosscheck", D, "--simulators", ",", *OUT], "--simulators"),
    ("crosscheck-low", ["crosscheck", D, "--low", "1.5", *OUT], "--low"),
    ("crosscheck-transitions", ["crosscheck", D, "--transitions", "0", *OUT], "--transitions"),
    ("variation-sigma-nan", ["variation", D, "--period", "30", "--sigma", "nan", *OUT],
     "--sigma"),
    ("variation-subticks", ["variation", D, "--period", "30", "--sigma", "0.05", "--subticks",
                            "0", *OUT], "--subticks"),
    ("stuckat-top", ["stuckat", D, "--top", "0", *OUT], "--top"),
    ("stuckat-table-value", ["stuckat", D, "--tables", "p[15]:2", *OUT], "p[15]:2"),
    ("demo-transitions", ["demo", "--transitions", "0", *OUT], "--transitions"),
    ("flatenn-bench-repeats", ["flatenn", "bench", "--repeats", "0"], "--repeats"),
    ("flatenn-rates", ["flatenn", "study", "--quick", "--rates", "1.5", *OUT], "--rates"),
    ("harden-ber", ["harden", "study", "--quick", "--ber", "0", *OUT], "--ber"),
    ("harden-ratio", ["harden", "study", "--quick", "--ratio", "1.5", *OUT], "--ratio"),
    ("nn-regulation", ["nn", "timing-study", "--quick", "--regulation", "2", *OUT],
     "--regulation"),
    ("nn-model", ["nn", "timing-study", "--quick", "--model", "nosuch", *OUT], "nosuch"),
    ("nn-junk-table", ["nn", "timing-study", "--table", "{in}/junk.parquet", *OUT],
     "junk.parquet"),
    # found by the outside audit
    ("build-fake-marker", ["build", "booth", "--out", "{in}/fake_marker"], "--force"),
    ("errtable-into-design", ["errtable", D, "--period", "30", "--out", "{in}/design_copy"],
     "design folder"),
    ("crosscheck-nothing", ["crosscheck", D, "--simulators", "verilator", "--semantics",
                            "transport", *OUT], "Verilator"),
    ("build-fifo-liberty", ["build", "booth", "--liberty", "{in}/fifo.lib", *OUT], "fifo"),
    ("build-spaced-int", ["build", "booth", "--width", " 8", *OUT], "--width"),
    ("build-underscore-int", ["build", "booth", "--width", "1_0", *OUT], "--width"),
    ("build-abbreviated-flag", ["build", "booth", "--wid", "8", *OUT], "--wid"),
    ("build-tiny-tick", ["build", "booth", "--delay-model", "liberty", "--tick-ps", "1e-300",
                         *OUT], "--tick-ps"),
    ("flatenn-duplicate-rate", ["flatenn", "study", "--quick", "--rates", "0.1,0.1", *OUT],
     "twice"),
    ("nn-missing-data-dir", ["nn", "timing-study", "--quick", "--data-dir", "{in}/nothere",
                             *OUT], "--data-dir"),
    ("build-symlink-loop", ["build", "booth", "--out", "{in}/loop"], "loop"),
]

_ARGPARSE_ERROR = re.compile(r"flipclock( [\w-]+)*: error: ")


def _error_line(stderr: str) -> str:
    """The one error line, or an assertion naming what else was printed."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines, "nothing on stderr"
    if len(lines) == 1:
        assert lines[0].startswith("flipclock: error: "), stderr
        return lines[0]
    # argparse: its usage block (indented continuation lines), then one error line
    assert lines[0].startswith("usage: ") and all(ln.startswith(" ") for ln in lines[1:-1]), (
        f"more than one error line:\n{stderr}")
    assert _ARGPARSE_ERROR.match(lines[-1]), stderr
    return lines[-1]


@pytest.mark.parametrize(("argv", "needle"), [(a, n) for _, a, n in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(argv: list[str], needle: str, inputs: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from flipclock.cli import main

    work = tmp_path / "work"
    work.mkdir()
    user = tmp_path / "users"
    user.mkdir()
    (user / "keep.txt").write_text("the user's data\n")
    monkeypatch.chdir(work)
    # caches (compiled kernels, checkpoints) go to this HOME; they are not outputs
    monkeypatch.setenv("HOME", str(tmp_path.parent / f"{tmp_path.name}-home"))
    names = {"in": str(inputs), "out": str(tmp_path / "out"), "user": str(user)}
    args = [a.format(**names) for a in argv]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse refusing a value
        rc = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    assert rc == 2, err
    line = _error_line(err)
    assert needle in line, line
    assert out == "", "printed on stdout before failing: work had started"
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, "files left behind"
