"""Result folders of the table commands: hashes checked by every reader, stale files refused,
one run per folder at a time, and Ctrl-C that stops at once and resumes exactly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sim.design import load_design
from sim.errtable import TableConfig, build_tables, load_tables
from sim.tables import CompressedTable, TableError

ROOT = Path(__file__).resolve().parents[1]
BOOTH8 = ROOT / "rtl" / "booth8"


def _flipclock(*args: str) -> list[str]:
    return [sys.executable, "-m", "flipclock", *args]


def _env() -> dict[str, str]:
    # the package under test, whatever the working folder of the test run
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def design():  # type: ignore[no-untyped-def]
    return load_design(BOOTH8)


def _sample_tables(design, out: Path, periods: tuple[int, ...] = (30, 36), *,  # type: ignore[no-untyped-def]
                   force: bool = False) -> None:
    cfg = TableConfig(periods=periods, mode="sample", samples=1, shard_pairs=1 << 16)
    build_tables(design.netlist, design.annotation, cfg, out, progress=False, force=force,
                 log=lambda _m: None)


@pytest.fixture(scope="module")
def built(design, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("tables") / "t"
    _sample_tables(design, out)
    return out


@pytest.fixture
def tables(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of one finished table folder (shards included, so a rerun resumes)."""
    return Path(shutil.copytree(built, tmp_path / "t"))


def test_meta_json_lists_every_file_with_its_hash(tables: Path) -> None:
    meta = json.loads((tables / "meta.json").read_text())
    assert {"compressed_T30.parquet", "compressed_T36.parquet", "weight_error_T30.csv",
            "summary.csv", "error_rate.png", "full_T30.parquet"} <= set(meta["files"])
    assert len(meta["meta_sha256"]) == 64
    assert sorted(load_tables(tables)) == [30, 36]


def test_one_flipped_bit_is_one_error_never_a_changed_table(tables: Path) -> None:
    path = tables / "compressed_T30.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(TableError, match=r"compressed_T30.parquet' does not match its hash in "
                       r"meta.json; rebuild it with `flipclock errtable"):
        load_tables(tables)
    with pytest.raises(TableError, match="does not match its hash in meta.json"):
        CompressedTable.read(path)


def test_a_flipped_bit_without_meta_json_is_caught_by_the_embedded_hash(tables: Path,
                                                                         tmp_path: Path) -> None:
    # a copied file has no manifest: the hash of its decoded columns still guards it
    rng = np.random.default_rng(0)
    src = (tables / "compressed_T30.parquet").read_bytes()
    changed = 0
    for i in range(20):
        data = bytearray(src)
        pos = int(rng.integers(0, len(data)))
        data[pos] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"copy{i}.parquet"
        path.write_bytes(bytes(data))
        try:
            got = CompressedTable.read(path)
        except TableError:
            continue
        ref = CompressedTable.read(tables / "compressed_T30.parquet")
        changed += not (np.array_equal(got.p_wrong, ref.p_wrong)
                        and np.array_equal(got.wrong_output, ref.wrong_output)
                        and np.array_equal(got.wrong_prob, ref.wrong_prob))
    assert changed == 0


def test_an_edited_meta_json_is_refused(tables: Path) -> None:
    meta = json.loads((tables / "meta.json").read_text())
    meta["seed"] = 1
    (tables / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TableError, match="does not match its own hash"):
        load_tables(tables)


def test_a_stale_period_file_is_refused(tables: Path) -> None:
    shutil.copy(tables / "compressed_T30.parquet", tables / "compressed_T31.parquet")
    with pytest.raises(TableError, match=r"compressed_T31.parquet' is not listed in meta.json"):
        load_tables(tables)
    with pytest.raises(TableError, match="is not listed in meta.json"):
        CompressedTable.read(tables / "compressed_T31.parquet")


def test_force_with_other_periods_removes_the_old_period_files(design, tables: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TableError, match="--force"):
        _sample_tables(design, tables, (28,))
    _sample_tables(design, tables, (28,), force=True)
    assert sorted(p.name for p in tables.glob("compressed_T*")) == ["compressed_T28.parquet"]
    assert not list(tables.glob("weight_error_T3*.csv"))
    assert sorted(load_tables(tables)) == [28]


def test_an_unfinished_folder_is_not_read(tables: Path) -> None:
    (tables / "meta.json").unlink()
    with pytest.raises(TableError, match="did not finish; run the same command again"):
        load_tables(tables)


def test_two_runs_into_one_out_never_crash(tmp_path: Path) -> None:
    out = tmp_path / "same"
    cmd = _flipclock("errtable", str(BOOTH8), "--mode", "sample", "--samples", "2",
                     "--period", "30", "--shard-pairs", "4096", "--out", str(out), "--json")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env()) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for rc, err in results:
        assert rc in (0, 2), err
        if rc == 2:
            assert err.count("\n") == 1 and err.startswith(
                "flipclock: error: Another flipclock run is writing into"), err
    assert 0 in [rc for rc, _ in results]
    assert sorted(load_tables(out)) == [30]


def _histogram(path: Path) -> None:
    # a joint previous-input histogram on 1/16 of the kernel's blocks (2048 previous
    # pairs each): the exhaustive run takes 1/16 of the full time (a few seconds)
    q = np.arange(1 << 16)
    np.save(path, (((q >> 8) // 8) % 16 == 0).astype(np.float64))


@pytest.mark.slow
def test_ctrl_c_stops_within_2_s_and_the_rerun_resumes_to_the_same_tables(
        tmp_path: Path) -> None:
    hist = tmp_path / "prev.npy"
    _histogram(hist)

    def cmd(out: Path) -> list[str]:
        return _flipclock("errtable", str(BOOTH8), "--period", "30", "--period", "40",
                          "--prev", str(hist), "--shard-pairs", "512", "--out", str(out),
                          "--json")

    out = tmp_path / "interrupted"
    proc = subprocess.Popen(cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    deadline = time.monotonic() + 60
    while not list((out / "shards").glob("shard_*.npz")):  # some work is done
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # at once: the run has most of its shards to go
    t0 = time.monotonic()
    rc = proc.wait(timeout=30)
    stopped = time.monotonic() - t0
    err = proc.stderr.read() if proc.stderr else ""
    assert rc == 130 and err.count("\n") == 1 and err.startswith("flipclock: interrupted"), err
    assert stopped < 2.0, f"took {stopped:.2f} s to stop"
    kept = len(list((out / "shards").glob("shard_*.npz")))
    assert 0 < kept < 128
    assert not (out / "meta.json").exists()

    resumed = subprocess.run(cmd(out), capture_output=True, text=True, env=_env())
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run(cmd(tmp_path / "fresh"), capture_output=True, text=True,
                           env=_env())
    assert fresh.returncode == 0, fresh.stderr
    a = json.loads((out / "meta.json").read_text())
    b = json.loads((tmp_path / "fresh" / "meta.json").read_text())
    assert a["content_hash"] == b["content_hash"]
    assert a["files"]["compressed_T30.parquet"] == b["files"]["compressed_T30.parquet"]


@pytest.mark.parametrize("damage", ["no-meta", "stale-period", "missing-csv", "edited-summary"])
def test_the_timing_study_checks_the_whole_table_folder(tables: Path, damage: str) -> None:
    # Found by the outside audit: the study read only the files it used.
    from flipclock.studies.timing.config import StudyError
    from flipclock.studies.timing.tables import plan_tables

    plan_tables(tables, [30], build=False, quick=False)  # intact: fine
    if damage == "no-meta":
        (tables / "meta.json").unlink()
    elif damage == "stale-period":
        shutil.copy(tables / "compressed_T30.parquet", tables / "compressed_T33.parquet")
    elif damage == "missing-csv":
        (tables / "weight_error_T30.csv").unlink()
    else:
        with open(tables / "summary.csv", "a") as f:
            f.write("junk\n")
    with pytest.raises(StudyError) as exc:
        plan_tables(tables, [30], build=False, quick=False)
    assert "\n" not in str(exc.value)
