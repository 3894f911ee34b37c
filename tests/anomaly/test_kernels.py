"""The compiled kernels equal the numpy arithmetic they replace, bit for bit
(tests/anomaly/numpy_reference.py), on random rows far beyond what the golden stream reaches:
counters near saturation, large counters up to 1e11 (float32 sums that depend on their order),
stamps that wrap, accounts with several buckets in an hour; and they are compiled when the
numba cache cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from tests.anomaly import numpy_reference as ref
from watchdog.anomaly import own_baseline
from watchdog.anomaly.batch import FeatureBatch
from watchdog.anomaly.group_kernel import reduce_groups
from watchdog.anomaly.layout import (
    F_WIDTH,
    NL,
    NS,
    SEEN_WORDS,
    U_WIDTH,
    stamps,
)
from watchdog.anomaly.peers import PeerBaselines
from watchdog.anomaly.reduction import by_account_and_bucket, by_rank
from watchdog.anomaly.ring_kernel import advance_and_read
from watchdog.anomaly.vocabulary import LOGGED, NW, PER_HOUR, TAIL_COLS

ROOT = Path(__file__).resolve().parents[2]


def _rows(rng: np.random.Generator, cap: int, accounts: int, hour: int,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Account-major rows (account row, bucket) of one hour: each account 1-6 buckets."""
    who = rng.choice(cap, accounts, replace=False)
    rows, bks = [], []
    for r in sorted(who.tolist()):
        mine = np.sort(rng.choice(PER_HOUR, rng.integers(1, PER_HOUR + 1), replace=False))
        rows += [r] * len(mine)
        bks += (hour * PER_HOUR + mine).tolist()
    return np.array(rows, np.int64), np.array(bks, np.int64)


def _bits(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """uint64 words with each bit set with probability ``p``."""
    bits = rng.random((*shape, 64)) < p
    return np.packbits(bits, axis=-1, bitorder="little").view("<u8").reshape(shape)


@pytest.mark.parametrize("seed", range(6))
def test_the_ring_kernel_is_numpys_update_and_window_read(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cap, accounts = 300, 200
    # near the 16-bit stamps' wrap for some seeds
    hour = int(rng.choice([1000, 65536 // PER_HOUR - 1, 3 * 65536 // PER_HOUR]))
    rows_am, bks_am = _rows(rng, cap, accounts, hour)
    b0 = hour * PER_HOUR
    u16 = rng.integers(0, 65536, (cap, U_WIDTH), dtype=np.uint16)
    u16[:, :200] = rng.choice([0, 1, 7, 65000, 65535], (cap, 200)).astype(np.uint16)
    # stamps: recent (valid), old, wrapped; ring stamps in their units
    for lo, hi, unit in ((0, 6, 1), (6, 30, PER_HOUR), (30, 37, 24 * PER_HOUR)):
        u16[:, lo:hi] = ((b0 // unit - rng.integers(-1, 12, (cap, hi - lo))) & 0xFFFF)
    u16[:, 333:459] = (b0 - rng.integers(-1, 2000, (cap, 126))) & 0xFFFF
    f32 = (rng.random((cap, F_WIDTH)) * 10.0 ** rng.integers(0, 12, (cap, F_WIDTH))
           ).astype(np.float32)
    seen = _bits(rng, (cap, SEEN_WORDS), 0.2)
    k = len(rows_am)
    small = rng.integers(0, 40, (k, NS))
    small[rng.random(k) < 0.1] = 60_000
    large = rng.random((k, NL)) * 10.0 ** rng.integers(0, 12, (k, NL))
    bloom = _bits(rng, (k, SEEN_WORDS), 0.03)
    cats = rng.integers(0, 1 << 14, k)
    subj = _bits(rng, (k,), 0.1)
    rare = rng.integers(0, 1 << 14, k)

    rm, prev, lasts, offs, _ = by_rank(rows_am)
    rows, bks = rows_am[rm], bks_am[rm]
    now, ring_cols = stamps(bks)
    ur = rows[: offs[1]]
    touched = ref.touched_slots(subj[rm], bloom[rm], cats[rm])
    u, f, sn = ref.advance((u16[ur], f32[ur], seen[ur]), prev, offs, small[rm].copy(),
                           large[rm], bloom[rm], cats[rm], touched, now, ring_cols)
    want = ref.read_windows(u, f, now, rare[rm])

    got = np.empty((k, NW))
    advance_and_read(u16, f32, seen, rows, small[rm], large[rm], bloom[rm], cats[rm],
                     subj[rm], now, ring_cols, rare[rm], got)
    got[:, LOGGED] = np.log1p(got[:, LOGGED])
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))  # -0.0 too
    assert np.array_equal(u16[ur], u[lasts])
    assert np.array_equal(f32[ur].view(np.uint32), f[lasts].view(np.uint32))
    assert np.array_equal(seen[ur], sn[lasts])


@pytest.mark.parametrize("seed", range(6))
def test_the_learning_kernel_is_numpys_learn(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    cap, accounts, groups = 300, 200, 5
    rows_am, _ = _rows(rng, cap, accounts, 1000)
    rm, _, _, offs, acct = by_rank(rows_am)
    rows = rows_am[rm]
    k = len(rows)
    mean = (rng.random((cap, NW)) * 8).astype(np.float32)
    mean[rng.random((cap, NW)) < 0.2] = 0
    var = np.minimum(rng.exponential(0.5, (cap, NW)) ** 3, 6e4).astype(np.float16)
    var[rng.random((cap, NW)) < 0.1] = 0
    meta = np.zeros((cap, 3), np.int32)
    meta[:, 0] = rng.choice([0, 1, 5, 1000, 2**24 + 1, 2**30], cap)
    x = rng.random((k, NW)) * 9
    x[rng.random((k, NW)) < 0.3] = 0
    table = rng.random((groups, NW)) * 6
    table[rng.random((groups, NW)) < 0.3] = 0
    gids = rng.integers(0, groups, k)
    age = rng.choice([0.0, 3600.0, 86400.0, 7 * 86400.0, 1e7], k)

    ur = rows[: offs[1]]
    m_ref, v_ref = mean[ur].copy(), var[ur].copy()
    om, ov, n_ref, usual_ref = ref.learn(m_ref, v_ref, meta[ur, 0].copy(), x, acct, offs,
                                         table[gids], age)
    om2, ov2, usual = own_baseline.learn(mean, var, meta, x, rows, table, gids, age)
    assert np.array_equal(om2.view(np.uint32), om.view(np.uint32))
    assert np.array_equal(ov2.view(np.uint32), ov.view(np.uint32))
    assert np.array_equal(usual, usual_ref)
    assert np.array_equal(mean[ur].view(np.uint32), m_ref.view(np.uint32))
    assert np.array_equal(var[ur].view(np.uint16), v_ref.view(np.uint16))
    assert np.array_equal(meta[ur, 0], n_ref.astype(np.int32))


@numba.njit(cache=False)
def _round_all(x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        out[i] = own_baseline.half_bits(x[i])


def test_float16_rounding_is_numpys_bit_for_bit() -> None:
    """The own baseline's variance is rounded to float16 in the kernel as numpy rounds it:
    every float16 value, the points half-way between neighbours (ties go to even), just
    either side of them, subnormals and random values; and read back exactly."""
    f16 = np.arange(0, 0x7BFF, dtype=np.uint16).view(np.float16).astype(np.float64)
    mid = (f16[:-1] + f16[1:]) / 2
    x = np.concatenate([f16, mid, np.nextafter(mid, 0), np.nextafter(mid, 1e9)])
    rng = np.random.default_rng(7)
    x32 = np.concatenate([x.astype(np.float32), (rng.random(100_000) * 6e4).astype(np.float32),
                          np.exp(rng.normal(0, 9, 100_000)).clip(0, 6e4).astype(np.float32)])
    got = np.empty(len(x32), np.uint16)
    _round_all(x32, got)
    assert np.array_equal(got, x32.astype(np.float16).view(np.uint16))
    h = np.arange(0, 0x7BFF, dtype=np.uint16)
    back = np.array([own_baseline.half_value(v) for v in h[::37].tolist()], np.float32)
    assert np.array_equal(back, h[::37].view(np.float16).astype(np.float32))


def test_the_kernels_compile_when_no_cache_can_be_written(tmp_path: Path) -> None:
    """A read-only install run by a user without a writable home (systemd's DynamicUser with
    ProtectHome, NUMBA_CACHE_DIR unset): numba finds no cache directory; the kernels are
    compiled without one and the featurizer works."""
    code = (
        "from watchdog.anomaly.compiled import STATUS\n"
        "import watchdog.anomaly.featurizer\n"
        "assert STATUS.kernels >= 3 and not STATUS.cached, STATUS\n"
        "print('uncached', len(STATUS.uncached))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    # every locator refused: the user-provided one cannot be created, the others are not
    # tried (the in-tree __pycache__ is writable here, as it is not in an installed package)
    env["NUMBA_CACHE_DIR"] = "/proc/watchdog-no-cache"
    env["NUMBA_CACHE_LOCATOR_CLASSES"] = "UserProvidedCacheLocator"
    env["HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "uncached" in out.stdout


@pytest.mark.parametrize("seed", range(4))
def test_the_group_kernel_is_numpys_group_by(seed: int) -> None:
    """One row per account and bucket from kept events: counters, the contract's integer
    counts (up to 2**40 each), bits and the latest time as numpy's group-by gave them."""
    rng = np.random.default_rng(200 + seed)
    n = 5000
    rows = rng.integers(0, 300, n)
    bks = 6000 + rng.integers(0, PER_HOUR, n)
    order, heads = by_account_and_bucket(rows, bks)
    fl = rng.integers(0, 8, n)
    off = rng.random(n) < 0.3
    res_bit = np.where(rng.random(n) < 0.8, rng.integers(0, 512, n), -1)
    src_bit = np.where(rng.random(n) < 0.8, rng.integers(0, 128, n), -1)
    cats = rng.integers(0, 1 << 14, n)
    subj = _bits(rng, (n,), 0.05)
    large = rng.integers(0, 2**40, (n, NL)).astype(np.float64)
    ts = rng.random(n) * 1e9
    want = ref.group(order, heads, fl, off, res_bit, src_bit, cats, subj, large, ts)
    g = len(heads)
    got = (np.zeros((g, NS), np.int64), np.zeros((g, NL)), np.zeros(g, np.int64),
           np.zeros(g, np.uint64), np.zeros((g, SEEN_WORDS), np.uint64), np.empty(g))
    reduce_groups(order, heads, fl, off, res_bit, src_bit, cats, subj,
                  np.ascontiguousarray(large[:, 0]), np.ascontiguousarray(large[:, 1]),
                  np.ascontiguousarray(large[:, 2]), ts, *got)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)


@pytest.mark.parametrize("with_levels", [False, True])
def test_the_scoring_kernel_is_numpys_scoring(with_levels: bool) -> None:
    """Model inputs and tail deviations of random rows (cold and warm, zeros, values at the
    peers' percentiles) as numpy computed them, with and without the tail's levels."""
    rng = np.random.default_rng(300 + with_levels)
    k, groups = 3000, 7
    raw = rng.random((k, NW)) * 9
    raw[rng.random((k, NW)) < 0.3] = 0.0
    q = np.sort(rng.random((groups, 3, NW)) * 6, axis=1)
    q[rng.random((groups, 3, NW)) < 0.2] = 0.0
    gids = rng.integers(0, groups, k)
    raw[:100] = q[gids[:100], 2]  # exactly at the 99th percentile
    own_m = (rng.random((k, NW)) * 6).astype(np.float32)
    own_v = rng.exponential(0.5, (k, NW)).astype(np.float16).astype(np.float32)
    own_v[rng.random((k, NW)) < 0.2] = 0.0
    warm = rng.random(k) < 0.8
    b = FeatureBatch(np.zeros(k, np.int64), ["u"] * k, gids, ["g"] * groups, raw,
                     np.zeros(k), warm, own_m, own_v, q, [], np.zeros(k, np.int64),
                     np.zeros(k, np.int64), np.arange(k), 0.0)
    levels = rng.random(len(TAIL_COLS)) * 2 + 0.5 if with_levels else None
    idx = rng.choice(k, 2000, replace=False)
    got, want = b.scoring(idx, levels), ref.scoring(b, idx, levels)
    for a, w in zip(got, want, strict=True):
        assert a.dtype == w.dtype
        assert np.array_equal(a.view(np.uint8), w.view(np.uint8))


@pytest.mark.parametrize("seed", range(4))
def test_the_fold_kernel_is_numpys_refresh(seed: int) -> None:
    # learnt histograms of every magnitude, queued counts up to uint32's top, groups with
    # nothing queued, groups made after the queue grew, hours with nothing queued at all
    rng = np.random.default_rng(seed)
    dim = 7
    mine, theirs = PeerBaselines(dim, 600.0), PeerBaselines(dim, 600.0)
    for p in (mine, theirs):
        for g in range(5):
            p.gid(f"g{g}")
        p.hist[:] = rng.random(p.hist.shape) * 10.0 ** rng.integers(-3, 9, p.hist.shape)
        p.weight[:] = rng.random(len(p.weight)) * 1e4
        p.last[:] = rng.integers(0, 50, len(p.last))
        rng = np.random.default_rng(seed)  # the same state in both
    rng = np.random.default_rng(100 + seed)
    for hour in range(6):
        k = 0 if hour == 2 else int(rng.integers(1, 30))
        gids = rng.integers(0, 6, k)
        x = np.abs(rng.normal(0, 4, (k, dim)))
        cats = rng.integers(0, 1 << 14, k)
        for p in (mine, theirs):
            p.add(gids, x, cats)
            if hour == 3:
                p.gid(f"late{hour}")  # a group the queue has no row for yet
                p._pend_hist[1] = np.uint32(2**32 - 1 - hour)  # counts near the top
        bucket = 60 + 6 * hour
        mine.refresh(bucket)
        ref.refresh(theirs, bucket)
        for a, b in ((mine.hist, theirs.hist), (mine.weight, theirs.weight),
                     (mine.cats, theirs.cats), (mine.last, theirs.last)):
            assert a.shape == b.shape
            assert a.tobytes() == b.tobytes()  # bit for bit
    assert mine.hist.max() > 1e9


@pytest.mark.parametrize("accounts", [1, 700, 9000, 30000])
def test_the_sorts_are_the_stable_sorts_of_their_keys(accounts: int) -> None:
    # keys that fit 16 bits (numpy's radix sort) and keys that do not: the same orders
    rng = np.random.default_rng(accounts)
    rows, bks = _rows(rng, 3 * accounts, accounts, 500)
    shuffle = rng.permutation(len(rows))
    order, heads = by_account_and_bucket(rows[shuffle], bks[shuffle])
    key = rows[shuffle] * 8 + bks[shuffle] - bks.min()
    assert np.array_equal(order, np.argsort(key, kind="mergesort"))
    assert np.array_equal(heads, np.flatnonzero(np.diff(key[order], prepend=-1)))
    rm, _, _, _, acct = by_rank(rows)
    starts = np.flatnonzero(np.diff(rows, prepend=-1))
    acct_am = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))
    rank_am = np.arange(len(rows)) - starts[acct_am]
    assert np.array_equal(rm, np.lexsort((acct_am, rank_am)))
    assert np.array_equal(acct, acct_am[rm])
