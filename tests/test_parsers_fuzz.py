"""Property-based tests: every parser of a user file gives a result or one user error.

For each entry point a user's file reaches -- the structural Verilog reader, the Liberty
reader, cell function strings, ``delays.json``, compressed error tables and the
previous-input histogram -- hypothesis feeds (a) arbitrary bytes or text and (b)
mutations of a valid file (bit flips, truncation, deleted, duplicated or inserted bytes
and lines; for JSON also values of the wrong type at any key).  The property: the call
returns, or raises an exception deriving from a package's user-error base whose message
is one non-empty line.  Any other exception is a bug and fails the test with its
traceback.

Runs are derandomized (CI sees the same examples every time) and small: the whole file
takes about ten seconds on two cores, so no property needs the ``slow`` marker.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flipclock.errors import UserError
from sim.cells import DEFAULT_LIBRARY, parse_function
from sim.errors import SimError
from sim.liberty import parse_liberty, read_liberty
from sim.reader import read_verilog

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FUZZ, max_examples=60)


def _user_errors() -> tuple[type[BaseException], ...]:
    from nnmap.errors import NNMapError

    return (SimError, UserError, NNMapError)


def result_or_one_line(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; a user error must have a one-line message, anything else propagates."""
    try:
        return fn(*args)
    except _user_errors() as exc:
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} with an empty message"
        assert "\n" not in message and "\r" not in message, (
            f"{type(exc).__name__} message is not one line: {message!r}")
        return None


# --- inputs ------------------------------------------------------------------------------

_COUNTER = itertools.count()


def _file(folder: Path, data: bytes, suffix: str) -> Path:
    """A fresh file per example: the Liberty reader caches by path, mtime and size."""
    path = folder / f"f{next(_COUNTER)}{suffix}"
    path.write_bytes(data)
    return path


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` after one to four random edits of bytes or lines."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "delete", "insert", "del_line",
                                   "dup_line", "swap_lines"]))
        n = len(data)
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[draw(st.integers(0, n)):]
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del data[i:i + draw(st.integers(1, 16))]
        elif op == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=8)
                             | st.sampled_from([b"(", b")", b"{", b"}", b";", b"\\\n", b"/*",
                                                b'"', b"[", b"]", b":", b",", b"'", b"\x00",
                                                b"\xff", b"`define X\n", b"1e999", b"-1"]))
        elif op in ("del_line", "dup_line", "swap_lines"):
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "del_line":
                del lines[i]
            elif op == "dup_line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


_WORD = re.compile(rb"[A-Za-z0-9_.+\-]+")
_ODD = [b"", b"x", b"0", b"-1", b"1e999", b"nan", b"inf", b"-0", b"0.5", b"99999999999", b"A",
        b"input", b"output", b"1'bx", b"2'b11", b"8'hff", b"[3:0]", b"scalar", b"t2", b"\"\"",
        b"total_output_net_capacitance", b"a b", b"1,2", b"endmodule", b"module"]


@st.composite
def token_mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with one to three words (names, numbers, keywords) replaced by odd values."""
    spans = [m.span() for m in _WORD.finditer(valid)]
    data = valid
    for _ in range(draw(st.integers(1, 3))):
        start, end = draw(st.sampled_from(spans))
        new = draw(st.sampled_from(_ODD) | st.binary(max_size=4))
        data = data[:start] + new + data[end:]
        spans = [m.span() for m in _WORD.finditer(data)] or [(0, 0)]
    return data


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value, NaN and huge numbers included."""
    scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=3)
                        | st.dictionaries(st.text(max_size=4), kids, max_size=3), max_leaves=6)


@st.composite
def json_mutated(draw: st.DrawFn, valid: Any) -> str:
    """``valid`` (parsed JSON) with one value somewhere replaced, a key deleted or renamed."""
    doc = json.loads(json.dumps(valid))
    node: Any = doc
    parent: Any = None
    key: Any = None
    while isinstance(node, dict | list) and node and draw(st.integers(0, 3)):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = node[key]
    if parent is None:
        return json.dumps(draw(json_values()) if draw(st.booleans()) else doc)
    op = draw(st.sampled_from(["replace", "delete", "rename"]))
    if op == "replace" or isinstance(parent, list):
        if op == "delete" and isinstance(parent, list):
            del parent[key]
        else:
            parent[key] = draw(json_values())
    elif op == "delete":
        del parent[key]
    else:
        parent[draw(st.text(max_size=4))] = parent.pop(key)
    return json.dumps(doc)


# --- cell function strings ---------------------------------------------------------------

FUNCTIONS = ["A", "!A", "(A B)", "!(A+B)", "(A^B)", "(S B)+(!S A)", "!((A B)+C)", "A' * B | 0"]


@FUZZ
@given(st.text(alphabet="AB01()!'+|^*& \t\n[]_xyz", max_size=40) | st.text(max_size=20))
def test_function_strings(text: str) -> None:
    result_or_one_line(parse_function, text)


@FUZZ
@given(st.sampled_from(FUNCTIONS).flatmap(lambda f: mutated(f.encode())))
def test_function_mutations(data: bytes) -> None:
    result_or_one_line(parse_function, data.decode("utf-8", "replace"))


@pytest.mark.parametrize("text", [
    "(" * 5000 + "A" + ")" * 5000,
    "!" * 5000 + "A",
    "A" + "'" * 50000,
    "+".join(["A"] * 20000),
])
def test_function_deep_nesting(text: str) -> None:
    result_or_one_line(parse_function, text)


# --- Liberty -----------------------------------------------------------------------------

LIBERTY = rb"""/* small library */
library (tiny) {
  time_unit : "1ns" ;
  capacitive_load_unit (1, pf) ;
  lu_table_template (t2) {
    variable_1 : total_output_net_capacitance ;
    variable_2 : input_net_transition ;
    index_1 ("0.01, 0.1") ;
    index_2 ("0.02, 0.2") ;
  }
  cell (NAND2X1) {
    area : 2 ;
    pin (A) { direction : input ; capacitance : 0.01 ; }
    pin (B) { direction : input ; rise_capacitance : 0.011 ; fall_capacitance : 0.009 ; }
    pin (Y) {
      direction : output ;
      function : "!(A B)" ;
      timing () {
        related_pin : "A B" ;
        timing_sense : negative_unate ;
        cell_rise (t2) { values ("0.1, 0.2", \
                                 "0.3, 0.4") ; }
        cell_fall (t2) { index_1 ("0.02, 0.2") ; values ("0.1, 0.2", "0.3, 0.4") ; }
        rise_transition (scalar) { values ("0.05") ; }
      }
    }
  }
  cell (DFF) { ff (IQ, IQN) { next_state : "D" ; } pin (D) { direction : input ; } }
}
"""


def test_liberty_sample_is_valid(tmp_path: Path) -> None:
    lib = read_liberty(_file(tmp_path, LIBERTY, ".lib"))
    assert "NAND2X1" in lib and lib.skipped == {"DFF": "sequential"}


@FUZZ
@given(data=st.binary(max_size=300))
def test_liberty_bytes(tmp_path: Path, data: bytes) -> None:
    result_or_one_line(read_liberty, _file(tmp_path, data, ".lib"))


def _read_and_use_liberty(path: Path) -> Any:
    """Read a library and use every cell: a library that loads must also evaluate."""
    lib = read_liberty(path)
    for cell in lib.cells.values():
        for out in cell.outputs:
            cell.truth_table(out)
            for pin in cell.inputs:
                cell.sense(out, pin)
        for arcs in cell.arcs.values():
            for arc in arcs:
                for table in (arc.cell_rise, arc.cell_fall, arc.rise_transition,
                              arc.fall_transition):
                    if table is not None:
                        assert math.isfinite(table(0.05, 0.1))
    return lib


@FUZZ
@given(data=mutated(LIBERTY) | token_mutated(LIBERTY))
def test_liberty_mutations(tmp_path: Path, data: bytes) -> None:
    result_or_one_line(_read_and_use_liberty, _file(tmp_path, data, ".lib"))


def test_liberty_binary_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="not a text file") as info:
        read_liberty(_file(tmp_path, b"\x1f\x8b\x08\x00" + bytes(range(256)), ".lib"))
    assert "\n" not in str(info.value)


@FUZZ
@given(text=st.text(alphabet="library(){};:,\"/*\\\n x1.-", max_size=80))
def test_liberty_syntax_text(text: str) -> None:
    result_or_one_line(parse_liberty, text)


@pytest.mark.parametrize("text", [
    "library (x) {" + "g () {" * 3000 + "}" * 3001,
    "library (x) {" + "g () {" * 3000,
])
def test_liberty_deep_nesting(tmp_path: Path, text: str) -> None:
    result_or_one_line(read_liberty, _file(tmp_path, text.encode(), ".lib"))


# --- Verilog netlists --------------------------------------------------------------------

NETLIST = b"""// tiny gate netlist
module top(a, b, y);
  input [1:0] a;
  input [1:0] b;
  output [2:0] y;
  wire n1, _2_;
  wire [1:0] w;
  AND2 g1 (.A(a[0]), .B(b[0]), .Y(n1));
  XOR2 g2 (.A(n1), .B(a[1]), .Y(_2_));
  MUX2 g3 (.A(b[1]), .B(1'b0), .S(w[0]), .Y(y[2]));
  assign w = {a[1], _2_};
  assign y[1:0] = {_2_, n1};
endmodule
"""


def test_netlist_sample_is_valid(tmp_path: Path) -> None:
    netlist = read_verilog(_file(tmp_path, NETLIST, ".v"), DEFAULT_LIBRARY)
    assert len(netlist.cells) == 3 and netlist.outputs["y"][1] == "_2_"


@FEW
@given(data=st.binary(max_size=200))
def test_netlist_bytes(tmp_path: Path, data: bytes) -> None:
    result_or_one_line(read_verilog, _file(tmp_path, data, ".v"), DEFAULT_LIBRARY)


@FUZZ
@given(data=mutated(NETLIST) | token_mutated(NETLIST))
def test_netlist_mutations(tmp_path: Path, data: bytes) -> None:
    result_or_one_line(read_verilog, _file(tmp_path, data, ".v"), DEFAULT_LIBRARY)


@pytest.mark.parametrize("body", [
    "assign y = " + "{" * 3000 + "a" + "}" * 3000 + ";",
    "assign y = " + "~" * 3000 + "a;",
    "assign y = {" + ", ".join(["a"] * 3000) + "};",
    "assign y = {3000{1'b0}};",
    "assign y = {99999999999{1'b0}};",
    "assign y = 99999999999'b0;",
    "wire [99999999999:0] w; assign w = 0;",
])
def test_netlist_pathological(tmp_path: Path, body: str) -> None:
    text = f"module top(a, y);\n input [1:0] a;\n output [1:0] y;\n {body}\nendmodule\n"
    result_or_one_line(read_verilog, _file(tmp_path, text.encode(), ".v"), DEFAULT_LIBRARY)


def test_netlist_binary_file_is_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path, b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 50, ".v")
    with pytest.raises(SimError, match="not a text file") as info:
        read_verilog(path, DEFAULT_LIBRARY)
    assert "\n" not in str(info.value)


# --- delays.json -------------------------------------------------------------------------

def _annotation_json() -> str:
    import tempfile

    from sim.delay import UnitDelay, annotate

    with tempfile.TemporaryDirectory() as tmp:
        netlist = read_verilog(_file(Path(tmp), NETLIST, ".v"), DEFAULT_LIBRARY)
    return annotate(netlist, UnitDelay()).to_json(indent=1)


@pytest.fixture(scope="module")
def annotation_json() -> str:
    return _annotation_json()


def _read_annotation(path: Path) -> Any:
    from sim.delay import DelayAnnotation

    return DelayAnnotation.read(path)


@FUZZ
@given(data=st.binary(max_size=200))
def test_delays_bytes(tmp_path: Path, data: bytes) -> None:
    result_or_one_line(_read_annotation, _file(tmp_path, data, ".json"))


@FUZZ
@given(data=st.data())
def test_delays_mutations(tmp_path: Path, annotation_json: str, data: st.DataObject) -> None:
    blob = data.draw(mutated(annotation_json.encode()))
    result_or_one_line(_read_annotation, _file(tmp_path, blob, ".json"))


@FUZZ
@given(data=st.data())
def test_delays_wrong_types(tmp_path: Path, annotation_json: str, data: st.DataObject) -> None:
    text = data.draw(json_mutated(json.loads(annotation_json)))
    result_or_one_line(_read_annotation, _file(tmp_path, text.encode(), ".json"))


# --- compressed error tables -------------------------------------------------------------

def _table_bytes(folder: Path) -> bytes:
    import numpy as np
    import pandas as pd

    from sim.tables import compress, signed_values

    v = signed_values(2)
    rows = [(pa, pb, ca, cb, v[ca] * v[cb] + (1 if (ca, cb, pa) == (2, 3, 1) else 0))
            for ca in range(4) for cb in range(4) for pa in range(4) for pb in range(4)]
    frame = pd.DataFrame(np.array(rows), columns=["prev_a", "prev_b", "cur_a", "cur_b",
                                                  "output"])
    path = folder / "compressed_T7.parquet"
    compress(frame, 2, period=7).write(path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def table_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _table_bytes(tmp_path_factory.mktemp("table"))


def _read_table(path: Path) -> Any:
    from sim.tables import CompressedTable

    return CompressedTable.read(path)


def _load_tables(folder: Path) -> Any:
    from sim.errtable import load_tables

    return load_tables(folder)


def test_table_flipped_page_header_is_one_line(tmp_path: Path, table_bytes: bytes) -> None:
    data = bytearray(table_bytes)
    data[4] ^= 1  # the first page header, just after the PAR1 magic
    result_or_one_line(_read_table, _file(tmp_path, bytes(data), ".parquet"))


@pytest.mark.parametrize("change", [
    {"width": None}, {"period": None}, {"width": "2"}, {"width": -1}, {"width": 64},
    {"period": "x"}, {"width": 2.5}, "drop-width", "drop-period",
], ids=["width-null", "period-null", "width-str", "width-neg", "width-64", "period-str",
        "width-float", "drop-width", "drop-period"])
def test_table_metadata_damaged(tmp_path: Path, table_bytes: bytes,
                                change: dict[str, Any] | str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(table_bytes))
    meta = json.loads(table.schema.metadata[b"flipclock.meta"])
    if isinstance(change, str):
        del meta[change.removeprefix("drop-")]
    else:
        meta.update(change)
    path = tmp_path / "compressed_T7.parquet"
    pq.write_table(table.replace_schema_metadata({b"flipclock.meta": json.dumps(meta).encode()}),
                   path)
    result_or_one_line(_read_table, path)


@FEW
@given(data=st.binary(max_size=200))
def test_table_bytes(tmp_path: Path, data: bytes) -> None:
    result_or_one_line(_read_table, _file(tmp_path, data, ".parquet"))


@FEW
@given(data=st.data())
def test_table_mutations(tmp_path: Path, table_bytes: bytes, data: st.DataObject) -> None:
    blob = data.draw(mutated(table_bytes))
    folder = tmp_path / f"t{next(_COUNTER)}"
    folder.mkdir()
    (folder / "compressed_T7.parquet").write_bytes(blob)
    result_or_one_line(_load_tables, folder)


@FEW
@given(data=st.data())
def test_table_metadata(tmp_path: Path, table_bytes: bytes, data: st.DataObject) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(table_bytes))
    meta = json.loads(table.schema.metadata[b"flipclock.meta"])
    text = data.draw(json_mutated(meta))
    path = tmp_path / f"compressed_T{next(_COUNTER)}.parquet"
    pq.write_table(table.replace_schema_metadata({b"flipclock.meta": text.encode()}), path)
    result_or_one_line(_read_table, path)


# --- previous-input histograms -----------------------------------------------------------

def _read_prev(path: Path) -> Any:
    from sim.histogram import read_prev_weights

    return read_prev_weights(str(path), "joint")


def _npy(weights: Any) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(weights, float))
    return buf.getvalue()


@pytest.mark.filterwarnings("error::UserWarning")  # a warning line breaks the one-line rule
@pytest.mark.parametrize(("data", "suffix"), [
    (b"", ".npy"),
    (b"", ".csv"),
    (_npy(range(256))[:60], ".npy"),
    (_npy(range(256)).replace(b"(256,)", b"(256, "), ".npy"),  # unbalanced header
    (b"0.5\nnan\n", ".csv"),
    (b"\xff\xfe\x00", ".csv"),
], ids=["empty-npy", "empty-csv", "truncated-npy", "bad-header-npy", "nan-csv", "binary-csv"])
def test_histogram_damaged(tmp_path: Path, data: bytes, suffix: str) -> None:
    result_or_one_line(_read_prev, _file(tmp_path, data, suffix))


@pytest.mark.filterwarnings("error::UserWarning")
@FUZZ
@given(data=st.binary(max_size=100), suffix=st.sampled_from([".npy", ".csv", ".txt"]))
def test_histogram_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    result_or_one_line(_read_prev, _file(tmp_path, data, suffix))


@pytest.mark.filterwarnings("error::UserWarning")
@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".npy", ".csv"]))
def test_histogram_mutations(tmp_path: Path, data: st.DataObject, suffix: str) -> None:
    weights = [w / 256 for w in range(256)]
    if suffix == ".npy":
        valid = _npy(weights)
    else:
        valid = "\n".join(f"{w:g}" for w in weights).encode()
    result_or_one_line(_read_prev, _file(tmp_path, data.draw(mutated(valid)), suffix))
