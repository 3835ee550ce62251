"""Hostile audit of the ``flipclock`` command line: hundreds of bad invocations, classified.

Every case is a bad invocation of one subcommand (out-of-range numbers, NaN and inf, empty
strings, wrong types, missing, binary, empty or damaged files, folders that are files,
irrelevant flags, unwritable or foreign output folders).  Each runs as ``python -m
flipclock ...`` in a subprocess, in its own scratch folder (its working directory and
``HOME``), with a short timeout: bad input must fail before any work starts.  A result is

========== ==============================================================================
OK         exit status 2 and stderr is one ``flipclock: error: ...`` line, or argparse's
           usage block followed by one ``flipclock ...: error: ...`` line
TRACEBACK  a Python traceback on stderr
SILENT     exit status 0: the bad input was accepted
SLOW       still running after the timeout (``--timeout``, default 20 s)
LEFTOVER   failed, but left files behind (in its scratch folder or its ``--out``)
MESSY      failed without a traceback but not in the one-line form (other exit status,
           several lines, warnings on stderr)
LATE       the one-line error, but only after output on stdout: work had started
========== ==============================================================================

It prints a table of the non-OK cases (``--all`` for every case) and a count per class,
and can write every result as JSON (``--json FILE``).  It is not part of the test suite
(a few minutes on two cores); ``tests/test_cli_errors.py`` runs a fast sample in-process.

Usage::

    python scripts/audit_cli.py [--jobs 2] [--timeout 20] [--only REGEX] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DESIGN = REPO / "rtl" / "booth8"
SRAM = REPO / "rtl" / "sram256x8"
LIB = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
UNWRITABLE = "/sys/flipclock-audit"  # sysfs refuses mkdir even to root

CLASSES = ("OK", "TRACEBACK", "SILENT", "SLOW", "LEFTOVER", "MESSY", "LATE")


@dataclass
class Result:
    """One audited invocation."""

    case: str
    argv: list[str]
    cls: str
    rc: int | None
    seconds: float
    stderr_tail: str
    leftovers: list[str]

    @property
    def command(self) -> str:
        return "flipclock " + " ".join(_quote(a) for a in self.argv)


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


# --- fixtures ----------------------------------------------------------------------------

def make_fixtures(root: Path) -> dict[str, str]:
    """Shared, read-only inputs: damaged files and design folders."""
    f = root / "fixtures"
    f.mkdir(parents=True)
    rnd = bytes((i * 151 + 7) % 256 for i in range(4096))
    files = {
        "bin.v": rnd, "empty.v": b"", "bad.v": b"module top(a; endmodule\n",
        "unknown_cell.v": b"module top(a, y); input a; output y; FOO3 g (.A(a), .Y(y));\n"
                          b"endmodule\n",
        "behav.v": b"module top(a, y); input a; output reg y; always @* y = a; endmodule\n",
        "text.txt": b"hello\n", "bin.lib": rnd, "empty.lib": b"",
        "bad.lib": b"library (x) {\n  cell (A) {\n", "bin.npy": rnd, "empty.npy": b"",
        "bad.csv": b"a,b\nc\n", "nan.csv": b"nan\n" * 256, "neg.csv": b"-1\n" * 256,
        "short.csv": b"1\n1\n", "inf.csv": b"inf\n" * 256, "bad.pt": rnd,
        "garbage.parquet": rnd, "empty.parquet": b"",
    }
    for name, data in files.items():
        (f / name).write_bytes(data)
    (f / "emptydir").mkdir()
    tables = f / "tables_garbage"
    tables.mkdir()
    (tables / "compressed_T30.parquet").write_bytes(rnd)
    (tables / "meta.json").write_text("{")
    (f / "tables_empty").mkdir()
    damages: dict[str, tuple[str, bytes | str | None]] = {
        "design_bin_delays": ("delays.json", rnd),
        "design_empty_timing": ("timing.json", b""),
        "design_trunc_gate": ("gate.v", None),
        "design_bad_build": ("build.json", b"{"),
        "design_no_build": ("build.json", b""),
        "design_bin_gate": ("gate.v", rnd),
        "design_text_delay": ("delays.json", "text-delay"),
        "design_binary_timing": ("timing.json", rnd),
    }
    for name, (target, damage) in damages.items():
        d = f / name
        shutil.copytree(DESIGN, d)
        path = d / target
        if name == "design_no_build":
            path.unlink()
        elif damage is None:
            text = path.read_bytes()
            path.write_bytes(text[: len(text) // 2])
        elif damage == "text-delay":
            doc = json.loads(path.read_text())
            cell = next(iter(doc["delays"]))
            pin = next(iter(doc["delays"][cell]))
            doc["delays"][cell][pin][0] = "fast"
            path.write_text(json.dumps(doc))
        else:
            assert isinstance(damage, bytes)
            path.write_bytes(damage)
    for p in f.rglob("*"):
        p.chmod(0o555 if p.is_dir() else 0o444)
    return {"F": str(f), "D": str(DESIGN), "SRAM": str(SRAM), "LIB": str(LIB),
            "RO": UNWRITABLE}


# --- cases -------------------------------------------------------------------------------

def _cases() -> list[tuple[str, str]]:
    """``(name, command line template)``; ``{out}``, ``{afile}``, ``{adir}`` are per case."""
    cases: list[tuple[str, str]] = []

    def add(group: str, base: str, variants: list[str]) -> None:
        for v in variants:
            # a variant that names its own --out replaces the base's
            b = base.replace(" --out {out}", "") if "--out" in v else base
            cases.append((f"{group}: {v}", f"{b} {v}".strip()))

    # top level
    add("top", "", ["", "nosuch", "nn", "build", "flatenn", "harden", "--out x"])
    # build booth
    bb = "build booth --out {out}"
    add("build booth", bb, [
        "--width 9", "--width 0", "--width -2", "--width 18", "--width nan", "--width 8.0",
        "--width ''", "--width abc", "--width 1e3", "--tree foo", "--cpa foo",
        "--delay-model foo", "--delay-model liberty --liberty {LIB} --tick-ps 0",
        "--delay-model liberty --liberty {LIB} --tick-ps -1",
        "--delay-model liberty --liberty {LIB} --tick-ps nan",
        "--delay-model liberty --liberty {LIB} --tick-ps inf",
        "--delay-model liberty --liberty {LIB} --tick-ps ''",
        "--delay-model effort --ticks-per-tau 0", "--delay-model effort --ticks-per-tau nan",
        "--delay-model effort --ticks-per-tau -1", "--delay-model liberty",
        "--delay-model liberty --liberty {F}/bin.lib",
        "--delay-model liberty --liberty {F}/empty.lib",
        "--delay-model liberty --liberty {F}/bad.lib",
        "--delay-model liberty --liberty {F}/missing.lib",
        "--delay-model liberty --liberty {F}/emptydir", "--liberty {F}/bin.lib",
        "--tick-ps 10", "--ticks-per-tau 4", "--delay-model unit --tick-ps 10",
        "--depth 7", "--netlist {F}/bad.v",
    ])
    add("build booth out", "build booth", [
        "--out {afile}", "--out {afile}/sub", "--out {RO}", "--out {adir}", "--out ''",
        "--out .", "",
    ])
    bn = "build netlist --out {out}"
    add("build netlist", bn, [
        "--netlist {F}/bin.v", "--netlist {F}/empty.v", "--netlist {F}/bad.v",
        "--netlist {F}/missing.v", "--netlist {F}/emptydir", "--netlist {F}/unknown_cell.v",
        "--netlist {F}/behav.v", "--netlist {F}/text.txt", "--netlist {D}/gate.v --top nosuch",
        "--netlist {D}/gate.v --top ''", "--netlist {D}/gate.v --liberty {F}/bin.lib",
        "--netlist {D}/gate.v --width 8", "--netlist {D}/gate.v --delay-model liberty",
        "--netlist ''", "",
    ])
    # Not cases: valid inputs that are merely slow or unusual (sram --depth 7, timing-study
    # --regulation 4sigma, --wd-fraction 0 = N_EAQ, harden --eval-samples 0 = all images).
    bs = "build sram --out {out}"
    add("build sram", bs, [
        "--depth 0", "--depth -1", "--depth nan", "--depth 1000000000",
        "--width 0", "--width 65", "--width abc", "--tree dadda", "--delay-model unit",
    ])
    # info
    add("info", "info", [
        "{F}/missing", "{afile}", "{F}/emptydir", "{adir}", "{F}/design_bin_delays",
        "{F}/design_empty_timing", "{F}/design_trunc_gate", "{F}/design_bad_build",
        "{F}/design_no_build", "{F}/design_bin_gate", "{F}/design_text_delay",
        "{F}/design_binary_timing", "''", "{D} --period 3",
    ])
    # crosscheck
    cc = "crosscheck {D} --out {out}"
    add("crosscheck", cc, [
        "--transitions 0", "--transitions -5", "--transitions nan", "--transitions abc",
        "--transitions 1000000000000", "--latest -1", "--periods 0", "--periods -1",
        "--low 0", "--low 1.5", "--low nan", "--low -0.5", "--low inf", "--seed -1",
        "--simulators ,", "--simulators foo", "--simulators ''", "--semantics foo",
        "--semantics ,", "--out {afile}", "--out {adir}", "--out {RO}",
    ])
    add("crosscheck design", "crosscheck --out {out}", [
        "{F}/design_bin_delays", "{F}/design_trunc_gate", "{F}/design_empty_timing",
        "{SRAM}", "{afile}",
    ])
    # errtable
    et = "errtable {D} --out {out}"
    add("errtable", et, [
        "--period 0", "--period -1", "--period 999", "--period nan", "--period abc",
        "--period 1.5", "--period-frac 0", "--period-frac -0.5", "--period-frac nan",
        "--period-frac inf", "--period-frac 1.5", "--period-frac ''", "--period-frac ,",
        "--period-frac 0.5,,", "--period-frac abc", "", "--period 30 --mode foo",
        "--period 30 --mode sample --samples 0", "--period 30 --mode sample --samples -1",
        "--period 30 --mode sample --samples nan", "--period 30 --samples 10",
        "--period 30 --mode sample --seed -1", "--period 30 --mode sample --seed abc",
        "--period 30 --prev {F}/missing.npy", "--period 30 --prev {F}/empty.npy",
        "--period 30 --prev {F}/bin.npy", "--period 30 --prev {F}/bad.csv",
        "--period 30 --prev {F}/nan.csv", "--period 30 --prev {F}/neg.csv",
        "--period 30 --prev {F}/short.csv", "--period 30 --prev {F}/inf.csv",
        "--period 30 --prev {F}/emptydir", "--period 30 --prev-kind stationary_a",
        "--period 30 --full-pairs x", "--period 30 --full-pairs '1,2;3'",
        "--period 30 --full-pairs 999,0", "--period 30 --full-pairs ''",
        "--period 30 --mode sample --full-pairs 1,2", "--period 30 --shard-pairs 0",
        "--period 30 --shard-pairs -1", "--period 30 --shard-pairs nan",
        "--period 30 --dask 'not an address'", "--period 30 --dask tcp://",
        "--period 30 --dask local:", "--period 30 --dask :::",
        "--period 30 --out {afile}", "--period 30 --out {afile}/sub", "--period 30 --out {RO}",
        "--period 30 --out {adir}", "--period 30 --out ''",
    ])
    add("errtable design", "errtable --period 30 --out {out}", [
        "{afile}", "{F}/emptydir", "{F}/design_bin_delays", "{F}/design_trunc_gate",
        "{F}/design_text_delay", "{SRAM}",
    ])
    # variation
    va = "variation {D} --out {out}"
    add("variation", va, [
        "--period 0 --sigma 0.05", "--period -1 --sigma 0.05", "--period 999 --sigma 0.05",
        "--period nan --sigma 0.05", "--period 30 --sigma -0.1", "--period 30 --sigma nan",
        "--period 30 --sigma inf", "--period 30 --sigma 100",
        "--period 30 --sigma 0.05 --sigma-global -1",
        "--period 30 --sigma 0.05 --sigma-global nan", "--period 30 --sigma 0.05 --samples 0",
        "--period 30 --sigma 0.05 --samples -1", "--period 30 --sigma 0.05 --prev-samples 0",
        "--period 30 --sigma 0.05 --prev-samples -1", "--period 30 --sigma 0.05 --subticks 0",
        "--period 30 --sigma 0.05 --subticks nan", "--period 30 --sigma 0.05 --center foo",
        "--period 30 --sigma 0.05 --dask 'bad address'", "--period 30",
        "--period 30 --sigma 0.05 --out {afile}", "--period 30 --sigma 0.05 --out {adir}",
        "--period 30 --sigma 0.05 --out {RO}",
    ])
    add("variation design", "variation --period 30 --sigma 0.05 --out {out}", [
        "{F}/design_bin_delays", "{F}/design_empty_timing", "{SRAM}",
    ])
    # stuckat
    sa = "stuckat {D} --out {out}"
    add("stuckat", sa, [
        "--top 0", "--top -1", "--top nan", "--rank-by foo", "--nets ''", "--nets nosuchnet",
        "--nets ,", "--tables x", "--tables 'p[15]:2'", "--tables nosuch:0",
        "--tables-top -1", "--out {afile}", "--out {adir}", "--out {RO}",
    ])
    add("stuckat design", "stuckat --out {out}", [
        "{F}/design_bin_delays", "{F}/design_trunc_gate", "{SRAM}",
    ])
    # nn timing-study
    nt = "nn timing-study --quick --out {out}"
    add("nn timing-study", nt, [
        "--model nosuch", "--dataset nosuch", "--data-dir {F}/missing",
        "--table {F}/missing.parquet", "--table {F}/tables_garbage --period 30",
        "--table {F}/tables_empty --period 30", "--table {F}/garbage.parquet",
        "--table {F}/empty.parquet", "--table {D} --period 30", "--table {F}/tables_garbage",
        "--period 0", "--period -1", "--period nan", "--regulation 0", "--regulation 2",
        "--regulation nan", "--regulation -1", "--regulation ''",
        "--seeds 0", "--seeds -1", "--test-images 0", "--test-images -1", "--epochs 0",
        "--epochs -1", "--checkpoint {F}/missing.pt", "--checkpoint {F}/bad.pt",
        "--checkpoint {F}/emptydir", "--wd-fraction 1.5",
        "--wd-fraction nan", "--wd-fraction -0.1", "--weight-port c", "--dataflow foo",
        "--dataflow-period 30", "--dataflow ws-marginal --dataflow-samples 0",
        "--design {afile}", "--design {F}/design_bin_delays", "--batch-size 0",
        "--threads 0", "--threads -1", "--sens-images 0", "--stream-images -1",
        "--out {afile}", "--out {adir}", "--out {RO}",
    ])
    add("nn timing-study args", "nn timing-study", ["--quick", "--out ''"])
    # flatenn
    fs = "flatenn study --quick --out {out}"
    add("flatenn study", fs, [
        "--model nosuch", "--dataset nosuch", "--epochs -1", "--epochs 0", "--trials 0",
        "--trials -1", "--rates 1.5", "--rates nan", "--rates -0.1", "--rates ''",
        "--rates ,", "--kinds foo", "--kinds ''", "--alphas 0", "--alphas -1", "--alphas nan",
        "--rhos -1", "--rhos nan", "--weight-bits 0", "--weight-bits 99", "--weight-bits -1",
        "--act-bits 0", "--act-bits 99", "--sram 64", "--sram 0x4096", "--sram axb",
        "--sram 64x4096x0", "--sram -1x5", "--seed -1", "--fault-seed -1",
        "--train-limit 0", "--train-limit -1", "--test-limit 0",
        "--data-dir {F}/missing", "--cache {afile}", "--dask 'bad address'", "--threads 0",
        "--threads -1", "--out {afile}", "--out {adir}", "--out {RO}",
    ])
    add("flatenn study args", "flatenn study", ["--quick"])
    add("flatenn bench", "flatenn bench", [
        "--repeats 0", "--repeats -1", "--repeats nan", "--dataset nosuch",
        "--cache {afile}", "--data-dir {afile}",
    ])
    # harden
    hs = "harden study --quick --out {out}"
    add("harden study", hs, [
        "--model nosuch", "--dataset nosuch", "--ber 0", "--ber 1.5", "--ber nan", "--ber ''",
        "--ber ,", "--ber -0.1", "--reps 0", "--reps -1", "--int8-reps -1", "--ratio -0.1",
        "--ratio 1.5", "--ratio nan", "--fig3-ber 0", "--fig3-ber 2", "--fig4-ber nan",
        "--prune-ratios 1.5", "--prune-ratios -1", "--prune-grid nan",
        "--epochs -1", "--finetune-epochs -1", "--seed -1", "--dask 'bad address'",
        "--threads 0", "--cache {afile}", "--out {afile}", "--out {adir}", "--out {RO}",
    ])
    # demo
    add("demo", "demo", [
        "--out {out} --transitions 0", "--out {out} --transitions -1",
        "--out {out} --transitions nan", "--out {out} --seed -1", "--out {afile}",
        "--out {adir}", "--out {RO}", "--out ''", "--out {afile}/sub",
    ])
    return cases


# --- running -----------------------------------------------------------------------------

def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for p in folder.rglob("*"):
        try:
            st = p.lstat()
        except OSError:
            continue
        out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def _one_line_error(stderr: str) -> bool:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return False
    last = lines[-1]
    if len(lines) == 1:
        return last.startswith("flipclock: error: ")
    # argparse: a usage block (first line 'usage:', continuation lines indented), then error
    if not lines[0].startswith("usage: ") or not re.match(r"flipclock( [\w-]+)*: error: ", last):
        return False
    return all(ln.startswith(" ") for ln in lines[1:-1])


def run_case(name: str, template: str, fixtures: dict[str, str], scratch: Path,
             index: int, timeout: float) -> Result:
    """Run one invocation in its own folder and classify it."""
    case_dir = scratch / "cases" / f"{index:03d}"
    work = case_dir / "cwd"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("a user's file\n")  # so that '--out .' is foreign
    adir = case_dir / "userdir"
    adir.mkdir()
    (adir / "keep.txt").write_text("the user's data\n")
    afile = case_dir / "afile"
    afile.write_text("a file, not a folder\n")
    names = {**fixtures, "out": str(case_dir / "out"), "afile": str(afile), "adir": str(adir)}
    import shlex

    argv = shlex.split(template.format(**names))
    before = _snapshot(case_dir)
    # one HOME for all cases: flipclock's caches (compiled kernels, checkpoints) stay out of
    # the user's, and a case that fills them is not counted as leaving files behind
    env = {**os.environ, "HOME": str(scratch / "home"), "COLUMNS": "100"}
    start = time.monotonic()
    env.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))  # Yosys' compiled wasm
    proc = subprocess.Popen([sys.executable, "-m", "flipclock", *argv], cwd=work, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's session, nothing else
        stdout, stderr = proc.communicate()
        rc = None
    seconds = time.monotonic() - start
    after = _snapshot(case_dir)
    leftovers = sorted(k for k, v in after.items() if before.get(k) != v)
    if rc is None:
        cls = "SLOW"
    elif "Traceback (most recent call last)" in stderr:
        cls = "TRACEBACK"
    elif rc == 0:
        cls = "SILENT"
    elif leftovers:
        cls = "LEFTOVER"
    elif rc == 2 and _one_line_error(stderr):
        cls = "LATE" if stdout.strip() else "OK"
    else:
        cls = "MESSY"
    tail = "\n".join(stderr.strip().splitlines()[-3:])
    return Result(name, argv, cls, rc, round(seconds, 2), tail, leftovers[:5])


def main(argv: list[str] | None = None) -> int:
    """Run the audit; exit status 1 if any case is not OK."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case (default 20)")
    ap.add_argument("--only", default="", help="regex on the case name")
    ap.add_argument("--json", type=Path, default=None, help="write every result here")
    ap.add_argument("--all", action="store_true", help="print OK cases too")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="flipclock-audit-"))
    try:
        fixtures = make_fixtures(scratch)
        cases = [(n, t) for n, t in _cases() if re.search(args.only, n)]
        rtl_before = _snapshot(REPO / "rtl")
        print(f"{len(cases)} cases, {args.jobs} at a time, {args.timeout:g} s each",
              file=sys.stderr)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_case, n, t, fixtures, scratch, i, args.timeout)
                       for i, (n, t) in enumerate(cases)]
            results = []
            for k, fut in enumerate(futures, 1):
                results.append(fut.result())
                if k % 20 == 0:
                    print(f"  {k}/{len(cases)}", file=sys.stderr)
        if _snapshot(REPO / "rtl") != rtl_before:
            print("WARNING: the committed rtl/ folder changed during the audit", file=sys.stderr)
    finally:
        if not args.keep:
            for p in scratch.rglob("*"):
                if p.is_dir():
                    p.chmod(0o755)
            shutil.rmtree(scratch, ignore_errors=True)
    shown = [r for r in results if args.all or r.cls != "OK"]
    print("| class | s | command | stderr (last line) |")
    print("|---|---:|---|---|")
    for r in shown:
        last = r.stderr_tail.splitlines()[-1] if r.stderr_tail else ""
        extra = f" [left: {', '.join(r.leftovers)}]" if r.leftovers else ""
        print(f"| {r.cls} | {r.seconds} | `{r.command}` | {last[:160]}{extra} |")
    counts = Counter(r.cls for r in results)
    print()
    print(f"{len(results)} cases: " + ", ".join(f"{c} {counts.get(c, 0)}" for c in CLASSES))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "command": r.command} for r in results],
                                        indent=1))
    return 0 if counts.get("OK", 0) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
