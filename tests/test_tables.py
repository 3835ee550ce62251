"""Error-table objects: the paper's 2-bit worked example (Tables I -> II -> III), files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.tables import CompressedTable, TableError, compress, pair_index, signed_values

TWO_BIT = {"00": 0, "01": 1, "10": -2, "11": -1}


def _paper_full_table() -> pd.DataFrame:
    """Table I of Wu et al. for current (10, 11), plus exact rows for every other pair.

    Only the previous input (01, 11) gives the wrong output 1010 (4-bit pattern) for the
    current input (10, 11); the paper's Table II lists every other pair as always right.
    """
    rows = []
    for ca in range(4):
        for cb in range(4):
            for pa in range(4):
                for pb in range(4):
                    a, b = signed_values(2)[ca], signed_values(2)[cb]
                    out = a * b
                    if (ca, cb, pa, pb) == (0b10, 0b11, 0b01, 0b11):
                        out = 0b1010  # the highlighted row of Table I
                    rows.append((pa, pb, ca, cb, out))
    return pd.DataFrame(rows, columns=["prev_a", "prev_b", "cur_a", "cur_b", "output"])


def test_paper_two_bit_example_tables_one_to_three() -> None:
    table = compress(_paper_full_table(), 2)
    i = int(pair_index(TWO_BIT["10"], TWO_BIT["11"], 2))
    a, b = 0b10, 0b11
    # Table II: (10, 11) -> 0010 with 15/16, 1010 with 1/16
    assert table.p_wrong[a, b] == pytest.approx(1 / 16)
    assert table.exact()[a, b] == 2  # 0010
    sl = slice(table.offsets[i], table.offsets[i + 1])
    assert table.wrong_output[sl].tolist() == [0b1010 - 16]  # 1010 read as signed 4 bits
    assert table.wrong_prob[sl].tolist() == [pytest.approx(1 / 16)]
    # every other pair is always right
    others = np.ones((4, 4), bool)
    others[a, b] = False
    assert (table.p_wrong[others] == 0).all()
    # Table III: weight A = 10 has error probability 1/64 (uniform B)
    wep = table.weight_error_probability("a")
    assert wep[0b10] == pytest.approx(1 / 64)
    assert wep[0b00] == wep[0b01] == wep[0b11] == 0


def test_weight_error_with_activation_histogram() -> None:
    table = compress(_paper_full_table(), 2)
    hist = np.array([0.0, 0.0, 0.0, 1.0])  # the activation is always B = 11
    assert table.weight_error_probability("a", hist)[0b10] == pytest.approx(1 / 16)
    assert table.weight_error_probability("b", hist)[0b10] == 0  # pair (a=11, b=10) is right
    with pytest.raises(TableError, match="4 non-negative entries"):
        table.weight_error_probability("a", [1.0, 2.0])


def test_parquet_round_trip_and_csv(tmp_path: Path) -> None:
    table = compress(_paper_full_table(), 2, period=7, meta={"netlist_hash": "abc"})
    path = table.write(tmp_path / "t.parquet", csv=True)
    back = CompressedTable.read(path)
    assert back.period == 7 and back.meta["netlist_hash"] == "abc"
    np.testing.assert_array_equal(back.p_wrong, table.p_wrong)
    np.testing.assert_array_equal(back.offsets, table.offsets)
    np.testing.assert_array_equal(back.wrong_output, table.wrong_output)
    csv = pd.read_csv(tmp_path / "t.csv")
    assert len(csv) == 16 + 1 and csv["probability"].sum() == pytest.approx(16)


def test_damaged_files_are_one_line_errors(tmp_path: Path) -> None:
    table = compress(_paper_full_table(), 2)
    path = table.write(tmp_path / "t.parquet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TableError, match="corrupted or truncated"):
        CompressedTable.read(path)
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(TableError, match="corrupted or truncated"):
        CompressedTable.read(tmp_path / "x.parquet")
    with pytest.raises(TableError, match="does not exist"):
        CompressedTable.read(tmp_path / "missing.parquet")


def test_compress_needs_every_pair() -> None:
    rows = _paper_full_table()
    with pytest.raises(TableError, match="has no rows"):
        compress(rows[rows.cur_a != 0], 2)
