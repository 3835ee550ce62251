"""The designs committed under rtl/ must equal what hw/ and the flow generate today."""

from __future__ import annotations

import pytest

from flipclock.defaults import DEFAULT_DESIGNS, RTL_DIR, stale_files


@pytest.mark.tools  # booth8_osu018 reads Debian's OSU 0.18 um Liberty file
@pytest.mark.parametrize("name", list(DEFAULT_DESIGNS))
def test_committed_rtl_is_fresh(name: str) -> None:
    assert (RTL_DIR / name).is_dir(), f"rtl/{name} is missing: run `nox -s rtl`"
    stale = stale_files(names=[name])
    assert not stale, f"stale files (regenerate with `nox -s rtl`): {stale}"
