"""The timing engine's compiled CPU kernel: C generated per cell library, built with the
system C compiler at run time, loaded with :mod:`ctypes`.

Why generated C: the work is a few bitwise operations on 64-bit words per node and tick
(one bit per transition), which numpy cannot do without a Python-level loop over nodes and
ticks; a C loop over ``L`` words per tick is vectorised by the compiler (AVX2 on x86-64).
The code depends only on the *cell library* (one evaluation function per cell output
function); the netlist, delays, windows and forced nets arrive as arrays at run time, so
one build serves every netlist, delay sample and fault of a library. Builds are cached by
the hash of their source and compiler flags (``FLIPCLOCK_CACHE`` or ``~/.cache/flipclock``).

The semantics implemented (transport and inertial, see :mod:`sim.engine`) are identical to
the numpy reference :func:`sim.wavesim.simulate_transitions`; tests compare the two.
ctypes releases the GIL during a call, so Python threads run blocks in parallel.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .cells import Expr
from .errors import SimError

__all__ = ["KernelError", "LANE_WORDS", "compile_kernel", "cache_dir", "c_expr"]

LANE_WORDS = 32
"""Words per entry (``64 * LANE_WORDS`` transitions per block), a multiple of 4 (AVX2)."""

CFLAGS = ["-O3", "-march=native", "-fno-strict-aliasing", "-shared", "-fPIC", "-std=c11"]


class KernelError(SimError, RuntimeError):
    """The kernel could not be compiled or loaded (the message names the fix)."""


def cache_dir() -> Path:
    """Folder for compiled kernels and other caches."""
    root = os.environ.get("FLIPCLOCK_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "flipclock"


def c_expr(e: Expr) -> str:
    """C expression of a parsed cell function over the words ``x0, x1, ...``.

    Pin names are replaced by the caller: ``("pin", "x0")``.
    """
    kind = e[0]
    if kind == "pin":
        return str(e[1])
    if kind == "const":
        return "~(u64)0" if e[1] else "(u64)0"
    if kind == "not":
        return f"~({c_expr(e[1])})"
    op = {"and": "&", "or": "|", "xor": "^"}[kind]
    return f"({c_expr(e[1])} {op} {c_expr(e[2])})"


def _rename(e: Expr, names: dict[str, str]) -> Expr:
    if e[0] == "pin":
        return ("pin", names[e[1]])
    if e[0] == "const":
        return e
    return (e[0], *(_rename(x, names) for x in e[1:]))


_RUNTIME = r"""
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
typedef uint64_t u64;
#define L %(L)d
#define M (L / 4)
/* An entry (one tick of one net) is M AVX2 vectors: L words, 64*L transitions. */
typedef u64 V __attribute__((vector_size(32), aligned(8), may_alias));

typedef struct {
  const int32_t *rise, *fall, *po;  /* per node; po is [nodes * maxin] */
  const uint8_t *force;             /* per net: 0 free, 1 stuck-at-0, 2 stuck-at-1 */
  const int32_t *lo, *hi, *rlo, *rhi, *off;  /* per net */
  const int32_t *ntype, *nout, *nin;         /* per node; nin is [nodes * maxin] */
  const int32_t *in_nets, *out_nets;
  int32_t sem, maxin, nodes, nins, nouts;
  /* pathdelay (sem 2): per node and input pin, the arc's rise and fall delays, and the
     pins in increasing order of rise (ordr) and fall (ordf) delay; [nodes * maxin] */
  const int32_t *arise, *afall, *ordr, *ordf;
} Plan;

static inline V* tick0(const Plan* P, V* A, int net) {  /* + t*M is tick t */
  return A + ((ptrdiff_t)P->off[net] - P->rlo[net]) * M;
}

static inline V splat(int bit) { V v = {0, 0, 0, 0}; return bit ? ~v : v; }

static inline void fill(V* dst, const V* e, int n) {
  for (int i = 0; i < n; i++) for (int m = 0; m < M; m++) dst[i * M + m] = e[m];
}

static inline void fill_const(V* dst, int bit, int n) {
  const V v = splat(bit);
  for (int i = 0; i < n * M; i++) dst[i] = v;
}

/* T[i] <- AND (or OR) of src[max(i-w+1,0) .. i], left-clamped. Short windows by
   doubling (log2 w passes); long ones by van Herk / Gil-Werman (prefix and suffix within
   blocks of w, then one combining pass: 3 passes whatever w), with the suffixes in the
   buffer's second half (T has room for 2 n entries). T <- window of src (T != src). */
#define OP(a, b) (is_or ? ((a) | (b)) : ((a) & (b)))
static void win(V* T, const V* src, int n, int w, int is_or) {
  if (w < 8) {
    memcpy(T, src, (size_t)n * M * sizeof(V));
    int k = 1;
    for (;;) {
      const int r = 2 * k <= w ? k : w - k;  /* doubling steps, then the remainder */
      if (r <= 0) break;
      for (int i = n - 1; i >= 0; i--) {
        const V* q = T + (ptrdiff_t)(i >= r ? i - r : 0) * M; V* p = T + (ptrdiff_t)i * M;
        for (int m = 0; m < M; m++) p[m] = OP(p[m], q[m]);
      }
      if (2 * k > w) break;
      k *= 2;
    }
    return;
  }
  V* H = T + (ptrdiff_t)n * M;
  for (int b0 = 0; b0 < n; b0 += w) {
    const int b1 = b0 + w < n ? b0 + w : n;
    for (int m = 0; m < M; m++) H[(ptrdiff_t)(b1 - 1) * M + m] = src[(ptrdiff_t)(b1 - 1) * M + m];
    for (int i = b1 - 2; i >= b0; i--)
      for (int m = 0; m < M; m++)
        H[(ptrdiff_t)i * M + m] = OP(src[(ptrdiff_t)i * M + m], H[(ptrdiff_t)(i + 1) * M + m]);
    for (int m = 0; m < M; m++) T[(ptrdiff_t)b0 * M + m] = src[(ptrdiff_t)b0 * M + m];
    for (int i = b0 + 1; i < b1; i++)
      for (int m = 0; m < M; m++)
        T[(ptrdiff_t)i * M + m] = OP(src[(ptrdiff_t)i * M + m], T[(ptrdiff_t)(i - 1) * M + m]);
  }
  for (int i = n - 1; i >= w - 1; i--)
    for (int m = 0; m < M; m++)
      T[(ptrdiff_t)i * M + m] = OP(H[(ptrdiff_t)(i - w + 1) * M + m], T[(ptrdiff_t)i * M + m]);
}
#undef OP

#define SIDX(s) ((s) < s0 ? 0 : (s) - s0)

/* Output semantics from f over ticks s0 .. s0+n-1 (S), writing ticks lo..hi of Y. */
static void finish(const Plan* P, int k, V* Y, int lo, int hi, int s0, int n,
                   const V* S, V* T1, V* T2) {
  const int R = P->rise[k], F = P->fall[k];
  if (P->sem == 0) {
    const V* src = S; int d = R;
    if (R != F) {
      if (R < F) win(T1, S, n, F - R + 1, 1); else { win(T1, S, n, R - F + 1, 0); d = F; }
      src = T1;
    }
    for (int t = lo; t <= hi; t++) {
      const V* q = src + (ptrdiff_t)SIDX(t - d) * M; V* y = Y + (ptrdiff_t)t * M;
      for (int m = 0; m < M; m++) y[m] = q[m];
    }
  } else {
    win(T1, S, n, R, 0);
    win(T2, S, n, F, 1);
    for (int t = lo; t <= hi; t++) {
      const V* a1 = T1 + (ptrdiff_t)SIDX(t - 1) * M; const V* o = T2 + (ptrdiff_t)SIDX(t - 1) * M;
      V* y = Y + (ptrdiff_t)t * M;
      for (int m = 0; m < M; m++) y[m] = a1[m] | (y[m - M] & o[m]);
    }
  }
}

/* pathdelay: a change of f at tick e (S holds f over s0 .. hi-1) schedules an update at
   e + d, d the smallest arc delay (for that edge) over the pins that changed at e; an
   update at t sets y to f(t - 1). FR (hi - lo + 1 entries) collects the update ticks. Pin
   i is read at tick t - c[i], held at its tick a[i] below and b[i] above its window. */
static void finish_path(const Plan* P, int k, V* Y, int lo, int hi, int s0, const V* S,
                        V* FR, int nin, const V* const* I, const int* a, const int* b,
                        const int* c) {
  const int nt = hi - lo + 1, base = k * P->maxin;
  memset(FR, 0, (size_t)nt * M * sizeof(V));
  V ch[nin > 0 ? nin * M : 1];
  for (int e = s0 + 1; e <= hi - 1; e++) {
    const V* fe = S + (ptrdiff_t)(e - s0) * M; const V* fp = fe - M;
    V rise[M], fall[M], any = splat(0);
    for (int m = 0; m < M; m++) {
      rise[m] = fe[m] & ~fp[m]; fall[m] = fp[m] & ~fe[m]; any |= rise[m] | fall[m];
    }
    const u64* aw = (const u64*)&any;
    if (!(aw[0] | aw[1] | aw[2] | aw[3])) continue;
    for (int i = 0; i < nin; i++) {
      const int j = e - c[i];
      if (j <= a[i] || j - 1 >= b[i]) {
        for (int m = 0; m < M; m++) ch[i * M + m] = splat(0);
        continue;
      }
      const V* x = I[i] + (ptrdiff_t)j * M;
      for (int m = 0; m < M; m++) ch[i * M + m] = x[m] ^ x[m - M];
    }
    for (int edge = 0; edge < 2; edge++) {
      const V* ev = edge ? fall : rise;
      const int32_t* ord = (edge ? P->ordf : P->ordr) + base;
      const int32_t* del = (edge ? P->afall : P->arise) + base;
      V taken[M];
      for (int m = 0; m < M; m++) taken[m] = splat(0);
      for (int q = 0; q < nin; q++) {
        const int i = ord[q], t = e + del[i];
        V* fr = FR + (ptrdiff_t)(t - lo) * M;
        for (int m = 0; m < M; m++) {
          const V sel = ch[i * M + m] & ev[m] & ~taken[m];
          taken[m] |= ch[i * M + m];
          if (t <= hi) fr[m] |= sel;
        }
      }
    }
  }
  for (int t = lo; t <= hi; t++) {
    const V* fr = FR + (ptrdiff_t)(t - lo) * M; const V* f1 = S + (ptrdiff_t)(t - 1 - s0) * M;
    V* y = Y + (ptrdiff_t)t * M;
    for (int m = 0; m < M; m++) y[m] = (fr[m] & f1[m]) | (~fr[m] & y[m - M]);
  }
}

/* Segment set-up for input i of a span: tick t reads input tick j = t - c, held at a
   (previous value) below its window and at b (final value) above it. */
#define SEG(I, p, st, a, b, c) do { const int j_ = t - (c);                 \
    if (j_ < (a)) { p = I + (ptrdiff_t)(a) * M; st = 0;                      \
                    if ((a) + (c) - 1 < end) end = (a) + (c) - 1; }          \
    else if (j_ >= (b)) { p = I + (ptrdiff_t)(b) * M; st = 0; }              \
    else { p = I + (ptrdiff_t)j_ * M; st = M; if ((b) + (c) < end) end = (b) + (c); } \
  } while (0)
"""

_NODE = r"""
/* f over ticks t0..t1 into D (M vectors per tick); input i read at tick t - c_i. */
static void span_%(name)s(%(span_args)s int t0, int t1, V* D) {
  int t = t0;
  while (t <= t1) {
    int end = t1;
%(span_decl)s
    for (; t <= end; t++) {
      for (int m = 0; m < M; m++) D[m] = %(expr)s;
      D += M;%(span_step)s
    }
  }
}

static void eval_%(name)s(const Plan* P, V* A, int k, V* S, V* T1, V* T2) {
  const int y = P->nout[k];
  V* Y = tick0(P, A, y);
  const int lo = P->lo[y], hi = P->hi[y];
  if (P->force[y]) {
    fill_const(Y + (ptrdiff_t)(lo - 1) * M, P->force[y] == 2, hi - lo + 2);
    return;
  }
%(decl)s
  {
%(prev)s
    V* d = Y + (ptrdiff_t)(lo - 1) * M;
    for (int m = 0; m < M; m++) d[m] = %(pexpr)s;
  }
  if (hi < lo) return;
  const int R = P->rise[k], F = P->fall[k];
  if (R == 1 && F == 1) {
    span_%(name)s(%(unit_args)s lo, hi, Y + (ptrdiff_t)lo * M);
  } else {
    const int s0 = lo - (R < F ? R : F) - 1, n = hi - s0;
    span_%(name)s(%(scr_args)s s0, hi - 1, S);
    if (P->sem == 2) {
%(path_call)s
    } else finish(P, k, Y, lo, hi, s0, n, S, T1, T2);
  }
}
"""

_DRIVER = r"""
static void run_nodes(const Plan* P, V* A, V* S, V* T1, V* T2) {
  for (int k = 0; k < P->nodes; k++) {
    switch (P->ntype[k]) {
%(cases)s
      default: break;
    }
  }
}

static void set_inputs(const Plan* P, V* A, const V* prev, const V* cur) {
  fill_const(tick0(P, A, 0) - M, 0, 1);  /* the constant nets */
  fill_const(tick0(P, A, 1) - M, 1, 1);
  for (int b = 0; b < P->nins; b++) {
    const int net = P->in_nets[b];
    V* Y = tick0(P, A, net);
    if (P->force[net]) fill_const(Y - M, P->force[net] == 2, 2);
    else { fill(Y - M, prev + (ptrdiff_t)b * M, 1); fill(Y, cur + (ptrdiff_t)b * M, 1); }
  }
}

static void capture(const Plan* P, V* A, int np, const int32_t* periods, V* out) {
  for (int p = 0; p < np; p++)
    for (int o = 0; o < P->nouts; o++) {
      const int net = P->out_nets[o];
      const int lo = P->lo[net], hi = P->hi[net] >= lo ? P->hi[net] : lo - 1;
      const int t = periods[p] < lo - 1 ? lo - 1 : (periods[p] > hi ? hi : periods[p]);
      fill(out + ((ptrdiff_t)p * P->nouts + o) * M, tick0(P, A, net) + (ptrdiff_t)t * M, 1);
    }
}

/* One block of 64*L arbitrary transitions; prev/cur are [nins] entries, out [np][nouts]. */
int fc_run(const Plan* P, V* A, V* S, V* T1, V* T2, const V* prev, const V* cur,
           int np, const int32_t* periods, V* out) {
  set_inputs(P, A, prev, cur);
  run_nodes(P, A, S, T1, T2);
  capture(P, A, np, periods, out);
  return 0;
}

/* Benchmark: evaluate the same block reps times. */
int fc_bench(const Plan* P, V* A, V* S, V* T1, V* T2, const V* prev, const V* cur, int reps) {
  for (int r = 0; r < reps; r++) { set_inputs(P, A, prev, cur); run_nodes(P, A, S, T1, T2); }
  return 0;
}

/* Output entries [blocks][np][nouts] (L words each) -> int64 values out[p * n + i] of
   transition i = 64*L*block + 64*l + lane (bit o of the value is output bit o). */
void fc_unpack(const u64* words, long nblocks, int np, int nouts, long n, int64_t* out) {
  for (long j = 0; j < nblocks; j++)
    for (int p = 0; p < np; p++) {
      const u64* w = words + ((size_t)j * np + p) * (size_t)nouts * L;
      for (int l = 0; l < L; l++) {
        const long base = j * 64L * L + 64L * l;
        if (base >= n) break;
        const int lanes = n - base < 64 ? (int)(n - base) : 64;
        for (int lane = 0; lane < lanes; lane++) {
          int64_t v = 0;
          for (int o = 0; o < nouts; o++) v |= (int64_t)((w[(size_t)o * L + l] >> lane) & 1) << o;
          out[(size_t)p * n + base + lane] = v;
        }
      }
    }
}

static int cmp_u32(const void* a, const void* b) {
  uint32_t x = *(const uint32_t*)a, y = *(const uint32_t*)b;
  return (x > y) - (x < y);
}

/* Exhaustive transitions of a two-operand design (inputs: W bits of a, then W bits of b;
   outputs: nb bits). golden[c] is the settled output of current pair c (the design's own
   zero-delay value, never an assumed product); a capture differing from it is wrong.
   For every current pair c in [pair0, pair1) the previous pairs q
   (q = prev_a << W | prev_b) are launched with weight w(q | c):
     mode 0: 1 (all 2^(2W) previous pairs, uniform)
     mode 1: wq[q] (a joint histogram over previous pairs)
     mode 2: prev_a == cur_a (operand a stationary), weight wq[prev_b]
     mode 3: prev_b == cur_b (operand b stationary), weight wq[prev_a]
   Lanes of weight 0 are not counted; blocks without weight are skipped. Per period, the
   weight of wrong captures is summed (nwrong[(c-pair0)*np + p]) and every distinct wrong
   value recorded: rec = (c, p, value) int32 triples, rw = summed weight.
   cnt is [np][2^(2W)] zeroed doubles, touched [np][2^(2W)] u32 scratch, out [np][2W]
   entries. Returns the number of records, or -1 if more than cap were needed. */
long fc_exhaustive(const Plan* P, V* A, V* S, V* T1, V* T2, int W, int nb, int pair0,
                   int pair1, int np, const int32_t* periods, int mode, const double* wq,
                   const int64_t* golden,
                   double* nwrong, int32_t* rec, double* rw, long cap, double* cnt,
                   uint32_t* touched, uint32_t* ntouched, V* out) {
  static const u64 PAT[6] = {0xAAAAAAAAAAAAAAAAull, 0xCCCCCCCCCCCCCCCCull,
                             0xF0F0F0F0F0F0F0F0ull, 0xFF00FF00FF00FF00ull,
                             0xFFFF0000FFFF0000ull, 0xFFFFFFFF00000000ull};
  const int nq = 1 << (2 * W);
  const u64 wmask = ((u64)1 << W) - 1;
  const int ni = 2 * W, lanes = 64 * L;
  const int nblocks = (nq + lanes - 1) / lanes;
  /* lane order: in mode 3 prev_a is the low half of the lane index, so the 2^W lanes of
     one stationary prev_b are contiguous (one block), as in mode 2 */
  const int swap = mode == 3;
  V prev[32 * M], cur[32 * M], ex[32 * M], valid[M], wv[M];
  u64* pw = (u64*)prev;
  u64* vw = (u64*)valid;
  const u64* ww = (const u64*)wv;
  double lw[64 * L];
  long nrec = 0;
  for (int c = pair0; c < pair1; c++) {
    const u64 ca = ((u64)c >> W) & wmask, cb = (u64)c & wmask;
    const u64 exact = (u64)golden[c];
    const u64 hold = mode == 2 ? ca : cb;  /* the stationary operand, modes 2 and 3 */
    for (int i = 0; i < ni; i++)
      fill_const(cur + i * M, i < W ? (int)((ca >> i) & 1) : (int)((cb >> (i - W)) & 1), 1);
    for (int o = 0; o < nb; o++) fill_const(ex + o * M, (int)((exact >> o) & 1), 1);
    for (int p = 0; p < np; p++) ntouched[p] = 0;
    for (int j = 0; j < nblocks; j++) {
      const long q0 = (long)j * lanes;  /* lane index x = q0 + lane */
      if ((mode == 2 || mode == 3) && ((q0 + lanes - 1) >> W < (long)hold || q0 >> W > (long)hold))
        continue;
      int any = 0;
      if (mode == 0) {  /* uniform: every lane below 2^(2W) counts with weight 1 */
        for (int l = 0; l < L; l++) {
          const long base = q0 + 64L * l;
          vw[l] = base + 64 <= nq ? ~(u64)0 : (base >= nq ? 0 : (((u64)1) << (nq - base)) - 1);
          any |= vw[l] != 0;
        }
      } else for (int l = 0; l < L; l++) {
        u64 v = 0;
        for (int b = 0; b < 64; b++) {
          const long x = q0 + 64L * l + b;
          double w = 0.0;
          if (x < nq) {
            if (mode == 0) w = 1.0;
            else if (mode == 1) w = wq[x];
            else if ((u64)(x >> W) == hold) w = wq[x & (long)wmask];
          }
          lw[64 * l + b] = w;
          if (w != 0.0) v |= (u64)1 << b;
        }
        vw[l] = v;
        any |= v != 0;
      }
      if (!any) continue;
      for (int i = 0; i < ni; i++) {
        /* lane index bit of operand bit i: a is the high half (low half when swapped) */
        const int xbit = swap ? i : (i < W ? W + i : i - W);
        for (int l = 0; l < L; l++) {
          if (xbit < 6) pw[i * L + l] = PAT[xbit];
          else pw[i * L + l] = (((q0 + 64L * l) >> xbit) & 1) ? ~(u64)0 : 0;
        }
      }
      set_inputs(P, A, prev, cur);
      run_nodes(P, A, S, T1, T2);
      capture(P, A, np, periods, out);
      for (int p = 0; p < np; p++) {
        const V* op = out + (ptrdiff_t)p * P->nouts * M;
        const u64* ow = (const u64*)op;
        for (int m = 0; m < M; m++) {
          V acc = op[m] ^ ex[m];
          for (int o = 1; o < nb; o++) acc |= op[o * M + m] ^ ex[o * M + m];
          wv[m] = acc & valid[m];
        }
        double* cp = cnt + (ptrdiff_t)p * nq;
        for (int l = 0; l < L; l++) {
          u64 wm = ww[l];
          while (wm) {
            const int lane = __builtin_ctzll(wm);
            const double w = mode == 0 ? 1.0 : lw[64 * l + lane];
            uint32_t value = 0;
            for (int o = 0; o < nb; o++) value |= (uint32_t)((ow[o * L + l] >> lane) & 1) << o;
            if (cp[value] == 0.0) touched[(ptrdiff_t)p * nq + ntouched[p]++] = value;
            cp[value] += w;
            nwrong[(long)(c - pair0) * np + p] += w;
            wm &= wm - 1;
          }
        }
      }
    }
    for (int p = 0; p < np; p++) {
      uint32_t* tp = touched + (ptrdiff_t)p * nq;
      double* cp = cnt + (ptrdiff_t)p * nq;
      qsort(tp, ntouched[p], sizeof(uint32_t), cmp_u32);
      for (uint32_t i = 0; i < ntouched[p]; i++) {
        if (nrec < cap) {
          int32_t* r = rec + 3 * nrec;
          r[0] = c; r[1] = p; r[2] = (int32_t)tp[i];
          rw[nrec] = cp[tp[i]];
        }
        nrec++;
        cp[tp[i]] = 0.0;
      }
    }
  }
  return nrec > cap ? -1 : nrec;
}
"""


def generate_source(functions: list[tuple[str, Expr, int]], lane_words: int = LANE_WORDS) -> str:
    """C source for a library's cell functions ``(name, expr over x0.., n_inputs)``."""
    if lane_words % 4 or lane_words < 4:
        raise KernelError(f"lane_words must be a multiple of 4, not {lane_words}")
    parts = [_RUNTIME % {"L": lane_words}]
    cases = []
    for tid, (name, expr, nin) in enumerate(functions):
        ins = range(nin)
        ce = c_expr(expr).replace("~(u64)0", "splat(1)").replace("(u64)0", "splat(0)")
        span_expr, prev_expr = ce, ce
        for i in ins:
            span_expr = span_expr.replace(f"x{i}", f"p{i}[m]")
            prev_expr = prev_expr.replace(f"x{i}", f"q{i}[m]")
        span_args = " ".join(f"const V* I{i}, int a{i}, int b{i}, int c{i}," for i in ins)
        span_decl = "\n".join(
            f"    const V* p{i}; int st{i}; SEG(I{i}, p{i}, st{i}, a{i}, b{i}, c{i});" for i in ins)
        span_step = "".join(f" p{i} += st{i};" for i in ins)
        decl = "\n".join(
            f"  const int n{i} = P->nin[k * P->maxin + {i}], o{i} = P->po[k * P->maxin + {i}]; "
            f"const int a{i} = P->lo[n{i}] - 1, b{i} = P->hi[n{i}] > a{i} ? P->hi[n{i}] : a{i}; "
            f"const V* I{i} = tick0(P, A, n{i});"
            for i in ins)
        prev = "\n".join(f"    const V* q{i} = I{i} + (ptrdiff_t)a{i} * M;" for i in ins)
        unit_args = " ".join(f"I{i}, a{i}, b{i}, 1 + o{i}," for i in ins)
        if nin:
            lists = [", ".join(f"{x}{i}" for i in ins) for x in "Iabo"]
            path_call = (f"      const V* const Iv[] = {{{lists[0]}}};\n"
                         f"      const int av[] = {{{lists[1]}}}, bv[] = {{{lists[2]}}}, "
                         f"cv[] = {{{lists[3]}}};\n"
                         f"      finish_path(P, k, Y, lo, hi, s0, S, T1, {nin}, Iv, av, bv, cv);")
        else:
            path_call = "      finish_path(P, k, Y, lo, hi, s0, S, T1, 0, 0, 0, 0, 0);"
        scr_args = " ".join(f"I{i}, a{i}, b{i}, o{i}," for i in ins)
        parts.append(_NODE % {"name": name, "span_args": span_args, "span_decl": span_decl,
                              "span_step": span_step, "expr": span_expr, "decl": decl,
                              "prev": prev, "unit_args": unit_args, "scr_args": scr_args,
                              "path_call": path_call,
                              "pexpr": prev_expr})
        cases.append(f"      case {tid}: eval_{name}(P, A, k, S, T1, T2); break;")
    parts.append(_DRIVER % {"cases": "\n".join(cases)})
    return "\n".join(parts)


_LOADED: dict[str, ctypes.CDLL] = {}


def compile_kernel(source: str) -> ctypes.CDLL:
    """Compile ``source`` (cached by content) and load it."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise KernelError("No C compiler found; install gcc (`apt-get install gcc`) or set CC")
    key = hashlib.sha256((source + " ".join(CFLAGS) + cc).encode()).hexdigest()[:20]
    if key in _LOADED:
        return _LOADED[key]
    folder = cache_dir() / "kernels"
    lib_path = folder / f"fc_{key}.so"
    if not lib_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / "kernel.c"
            src.write_text(source)
            out = Path(tmp) / "kernel.so"
            proc = subprocess.run([cc, *CFLAGS, "-o", str(out), str(src)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise KernelError(f"Compiling the timing kernel with {cc} failed:\n"
                                  + proc.stderr[-2000:])
            os.replace(out, lib_path)
    lib = ctypes.CDLL(str(lib_path))
    _LOADED[key] = lib
    return lib
