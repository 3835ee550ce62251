"""Every ``flipclock`` command the README shows runs as written (at small sizes).

The commands are read from the README itself, so an example that stops working fails here.
Optional parts in brackets are dropped; placeholders (``DIR``, ``X.v``, ``L.lib``,
``X.sdf``, ``their_netlist.v``, ``their.lib``, ``their.sdf``) become real files (the SDF is
OpenSTA's ``write_sdf`` of the netlist); long runs get size flags appended (argparse keeps the
last value), which shrink a run without changing what it does. Where the README shows the
output (``$ flipclock ...`` in a console block) and the run is at full size, the output must
match exactly: the README's tour is a record, not an illustration.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OSU018 = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"

# Appended to shrink a command (same meaning, smaller size); the key is the subcommand path.
SMALL: dict[str, list[str]] = {
    "crosscheck": ["--transitions", "20", "--latest", "2", "--simulators", "icarus"],
    "errtable": ["--mode", "sample", "--samples", "2"],
    "variation": ["--samples", "2", "--prev-samples", "1"],
    "stuckat": ["--nets", "p[15],a[0]"],
    "nn timing-study": ["--quick", "--dataset", "fashion-mnist-subset", "--seeds", "2",
                        "--test-images", "100", "--epochs", "1", "--no-progress"],
    "flatenn study": ["--quick", "--dataset", "fashion-mnist-subset", "--trials", "2",
                      "--train-limit", "600", "--test-limit", "100", "--epochs", "1",
                      "--rates", "0,0.05", "--kinds", "flip"],
    "harden study": ["--quick", "--dataset", "fashion-mnist-subset", "--reps", "2",
                     "--int8-reps", "1", "--eval-samples", "100", "--epochs", "1",
                     "--finetune-epochs", "1", "--ber", "1e-4,1e-2", "--prune-ratios", "0.5",
                     "--prune-grid", "0.5", "--no-progress"],
    "demo": ["--no-studies", "--transitions", "20", "--table-samples", "2"],
}


@dataclass(frozen=True)
class Example:
    line: int
    argv: tuple[str, ...]
    expected: str | None  # the output the README shows, if any

    @property
    def key(self) -> str:
        words = [w for w in self.argv[1:3] if not w.startswith("-")]
        two = " ".join(words[:2])
        return two if two in SMALL else words[0]


def examples() -> list[Example]:
    """Every flipclock command in the README's code blocks, in order."""
    text = (ROOT / "README.md").read_text()
    found: list[Example] = []
    for block in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        start = text[: block.start()].count("\n") + 2
        lines = block.group(2).replace("\\\n", " ").splitlines()
        for i, raw in enumerate(lines):
            console = raw.startswith("$ flipclock ")
            if not (console or raw.startswith("flipclock ")):
                continue
            command = re.sub(r"\s*\[[^\]]*\]", "", raw.removeprefix("$ "))  # optional parts
            command = command.split("#")[0].strip()
            expected = None
            if console:
                out = []
                for nxt in lines[i + 1:]:
                    if nxt.startswith("$ "):
                        break
                    out.append(nxt)
                expected = "\n".join(out).strip()
            found.append(Example(start + i, tuple(shlex.split(command)), expected))
    return found


EXAMPLES = examples()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like a fresh clone's root: the committed designs, and the inputs the
    README's placeholders stand for."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "rtl", root / "rtl")
    shutil.copy(ROOT / "rtl" / "booth8_osu018" / "gate.v", root / "their_netlist.v")
    shutil.copy(OSU018, root / "their.lib")
    from sim.sta import opensta_write_sdf

    opensta_write_sdf(root / "their_netlist.v", root / "their.lib", "booth", root / "their.sdf")
    return root


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("FLIPCLOCK_CACHE", str(root / "cache"))
    env["COLUMNS"] = "100"
    return env


def test_the_readme_shows_commands() -> None:
    keys = {e.key for e in EXAMPLES}
    assert {"build", "info", "crosscheck", "errtable", "variation", "stuckat",
            "nn timing-study", "flatenn study", "harden study", "demo"} <= keys, keys


def _run(example: Example, workdir: Path) -> str | None:
    """Run one README command; ``None`` if it works as written, else what went wrong."""
    stand_in = {"DIR": f"out/L{example.line}", "X.v": "their_netlist.v", "L.lib": "their.lib",
                "X.sdf": "their.sdf"}
    argv = [stand_in.get(a, a) for a in example.argv[1:]]
    small = SMALL.get(example.key, [])
    proc = subprocess.run([sys.executable, "-m", "flipclock", *argv, *small], cwd=workdir,
                          capture_output=True, text=True, env=_env(workdir), timeout=900)
    where = f"README line {example.line}: {shlex.join(['flipclock', *argv])}"
    shown = example.expected
    if shown is not None and shown.startswith("flipclock: error:"):
        if proc.returncode != 2 or proc.stderr.strip() != shown:
            return f"{where}\n  shows: {shown}\n  got ({proc.returncode}): {proc.stderr.strip()}"
        return None
    if proc.returncode != 0:
        return f"{where}\n  exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"
    if shown and not small and proc.stdout.strip() != shown:
        return f"{where}\n  shows other output than it prints:\n{proc.stdout.strip()}"
    return None


STUDIES = ("nn timing-study", "flatenn study", "harden study")


def _run_all(examples: list[Example], workdir: Path) -> None:
    failures, seen = [], set()
    for example in examples:
        # the same command shown twice (tour and reference) runs once; only --out differs
        argv = list(example.argv)
        if "--out" in argv:
            del argv[argv.index("--out"):argv.index("--out") + 2]
        key = (tuple(argv), example.expected)
        if key in seen:
            continue
        seen.add(key)
        failure = _run(example, workdir)
        if failure:
            failures.append(failure)
    assert not failures, "\n\n".join(failures)


# Two tests, so the two workers share the time; each runs its examples in README order in
# its own folder (later examples use what earlier ones made), never split or reordered.
@pytest.mark.slow
@pytest.mark.sim
def test_readme_hardware_commands_work_as_written(workdir: Path) -> None:
    _run_all([e for e in EXAMPLES if e.key not in STUDIES], workdir)


@pytest.mark.slow
def test_readme_study_commands_work_as_written(tmp_path_factory: pytest.TempPathFactory
                                               ) -> None:
    root = tmp_path_factory.mktemp("readme-studies")
    shutil.copytree(ROOT / "rtl", root / "rtl")
    # the tables the studies read are the tour's (its errtable example, first)
    tour_tables = [e for e in EXAMPLES if e.key == "errtable" and "tables/booth8" in e.argv]
    assert tour_tables, "the README's tour no longer builds tables/booth8"
    _run_all([*tour_tables, *(e for e in EXAMPLES if e.key in STUDIES)], root)
