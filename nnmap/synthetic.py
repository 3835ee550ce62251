"""Synthetic compressed error tables, for tests and benchmarks when no real table is at hand.

Real tables come from the timing engine (``flipclock errtable``); these only have the same
*form*: a random fraction ``density`` of operand pairs is error-prone, each with
``p_wrong ~ Beta`` of mean ``mean_p``, and 1 to ``max_outputs`` distinct wrong outputs that
differ from the exact product in the top ``msb_bits`` bits of the 16-bit output (timing
violations hit the slowest, most significant bits first), with Dirichlet-split
probabilities. The result is reproducible from ``seed``.
"""

from __future__ import annotations

import numpy as np

from sim.tables import CompressedTable, signed_values

__all__ = ["synthetic_table"]


def synthetic_table(*, seed: int = 0, density: float = 0.05, mean_p: float = 0.1,
                    max_outputs: int = 4, msb_bits: int = 6, width: int = 8,
                    n_prev: int = 256) -> CompressedTable:
    """A random but well-formed :class:`CompressedTable`.

    Parameters
    ----------
    seed:
        Seed of the generator.
    density:
        Fraction of operand pairs with ``p_wrong > 0``.
    mean_p:
        Mean ``p_wrong`` of those pairs (Beta(0.5, 0.5 (1 - m) / m) distributed).
    max_outputs:
        Most distinct wrong outputs per pair (at most ``2**msb_bits - 1``).
    msb_bits:
        Wrong outputs flip a random non-empty subset of the top ``msb_bits`` output bits.
    width:
        Operand width; products are ``2 * width`` bits.
    n_prev:
        Nominal previous-input samples recorded per pair (metadata only).
    """
    if not 0 <= density <= 1 or not 0 < mean_p < 1:
        raise ValueError(f"density must be in [0, 1] and mean_p in (0, 1), not {density!r} "
                         f"and {mean_p!r}")
    if not 1 <= max_outputs < (1 << msb_bits) or not 1 <= msb_bits <= 2 * width:
        raise ValueError(f"Need 1 <= max_outputs < 2**msb_bits and msb_bits <= {2 * width}, "
                         f"not {max_outputs!r} and {msb_bits!r}")
    rng = np.random.default_rng(seed)
    n = 1 << width
    out_bits = 2 * width
    v = signed_values(width)
    exact = np.multiply.outer(v, v).ravel()
    prone = np.flatnonzero(rng.random(n * n) < density)
    p = np.zeros(n * n)
    p[prone] = rng.beta(0.5, 0.5 * (1 - mean_p) / mean_p, len(prone))
    p[prone] = np.clip(p[prone], 1.0 / n_prev, 1.0)
    k = rng.integers(1, max_outputs + 1, len(prone))
    offsets = np.zeros(n * n + 1, np.int64)
    offsets[prone + 1] = k
    np.cumsum(offsets, out=offsets)
    # k distinct non-zero masks per pair: the k smallest of random keys over all masks
    n_masks = (1 << msb_bits) - 1
    ranked = np.argsort(rng.random((len(prone), n_masks)), axis=1)
    take = np.arange(n_masks)[None, :] < k[:, None]
    masks = (ranked[take] + 1) << (out_bits - msb_bits)  # row-major: pair by pair
    pair_of = np.repeat(prone, k)
    raw = (exact[pair_of] & ((1 << out_bits) - 1)) ^ masks
    outputs = np.where(raw >= 1 << (out_bits - 1), raw - (1 << out_bits), raw)
    share = rng.exponential(size=len(pair_of))  # Dirichlet(1, ..., 1) per pair
    total = np.bincount(np.repeat(np.arange(len(prone)), k), weights=share)
    probs = p[pair_of] * share / np.repeat(total, k)
    return CompressedTable(
        width=width, period=0, p_wrong=p.reshape(n, n), offsets=offsets,
        wrong_output=outputs, wrong_prob=probs, n_prev=np.full((n, n), n_prev, np.int64),
        meta={"synthetic": True, "seed": seed, "density": density, "mean_p": mean_p,
              "max_outputs": max_outputs, "msb_bits": msb_bits})
