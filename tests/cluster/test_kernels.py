"""The Numba kernels of ``fastseg.cluster.kernels`` against the references in ``tests/naive.py``."""

import itertools

import naive
import numba
import numpy as np
import pytest

from fastseg import config
from fastseg.cluster import initialization, kernels

B = config.BLOCK_ROWS
DTYPES = [np.float32, np.float64]
LAYOUTS = ["c", "readonly"]
ROWS = [1, 7, B, B + 1, 10_000]
KD = list(itertools.product((1, 3, 5, 8), (1, 2, 5, 8)))  # (k, d): tile padding cases

# Squared distances may be contracted into fused multiply-adds (fastmath "contract"), so they
# can differ from NumPy's in the last bits; sums in a fixed order agree to rounding.
RTOL = 1e-12


def _layout(a, layout):
    """The array as the kernel should see it: C-contiguous, and read-only when asked."""
    a = np.ascontiguousarray(a)
    if layout == "readonly":
        a = a.copy()
        a.setflags(write=False)
    return a


def _data(n, k, d, dtype, layout, seed=0):
    rng = np.random.default_rng(seed + 1000 * n + 10 * k + d)
    X = rng.standard_normal((n, d)).astype(dtype)
    centers = rng.standard_normal((k, d))
    w = rng.uniform(0.5, 2.0, n)
    return _layout(X, layout), _layout(centers, layout), _layout(w, layout), rng


@pytest.fixture
def restore_threads():
    old = numba.get_num_threads()
    yield
    numba.set_num_threads(old)


def _two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread on this machine")
    return 2


# ----- n_blocks ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n, expected", [(0, 0), (1, 1), (B - 1, 1), (B, 1), (B + 1, 2), (3 * B, 3), (3 * B + 5, 4)]
)
def test_n_blocks(n, expected):
    assert kernels.n_blocks(n) == expected == len(naive.block_ranges(n))


# ----- assign_accumulate ---------------------------------------------------------------------
@pytest.mark.parametrize("k, d", KD)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_assign_accumulate(dtype, layout, n, k, d):
    X, centers, w, rng = _data(n, k, d, dtype, layout)
    labels_in = rng.integers(-1, k, n).astype(np.int32)
    nb = kernels.n_blocks(n)
    # One spare block, and garbage everywhere: the kernel must zero what it uses, touch no more.
    block_sums = np.full((nb + 1, k, d), np.nan)
    block_weights = np.full((nb + 1, k), np.nan)
    block_stats = np.full((nb + 1, 2), np.nan)
    labels = labels_in.copy()
    kernels.assign_accumulate(X, w, centers, labels, block_sums, block_weights, block_stats)

    ref_labels, ref_sums, ref_weights, ref_stats = naive.assign_accumulate(X, w, centers, labels_in)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(block_sums[:nb], ref_sums, rtol=RTOL, atol=1e-9)
    np.testing.assert_allclose(block_weights[:nb], ref_weights, rtol=RTOL)
    np.testing.assert_allclose(block_stats[:nb, 0], ref_stats[:, 0], rtol=1e-10)
    np.testing.assert_array_equal(block_stats[:nb, 1], ref_stats[:, 1])
    assert np.isnan(block_sums[nb]).all() and np.isnan(block_weights[nb]).all()
    assert np.isnan(block_stats[nb]).all()


def test_assign_accumulate_counts_no_change_when_labels_already_right():
    X, centers, w, _ = _data(B + 10, 3, 2, np.float64, "c")
    labels, _ = naive.assign(X, centers)
    labels = labels.astype(np.int32)
    nb = kernels.n_blocks(X.shape[0])
    bs, bw, st = np.empty((nb, 3, 2)), np.empty((nb, 3)), np.empty((nb, 2))
    kernels.assign_accumulate(X, w, centers, labels, bs, bw, st)
    assert st[:, 1].sum() == 0
    np.testing.assert_allclose(bw.sum(), w.sum(), rtol=1e-12)


def test_assign_accumulate_zero_weights():
    X, centers, _, _ = _data(50, 3, 2, np.float64, "c")
    w = np.zeros(50)
    labels = np.full(50, -1, dtype=np.int32)
    bs, bw, st = np.empty((1, 3, 2)), np.empty((1, 3)), np.empty((1, 2))
    kernels.assign_accumulate(X, w, centers, labels, bs, bw, st)
    assert (bs == 0).all() and (bw == 0).all() and st[0, 0] == 0 and st[0, 1] == 50
    np.testing.assert_array_equal(labels, naive.assign(X, centers)[0])


# ----- reduce_blocks -------------------------------------------------------------------------
@pytest.mark.parametrize("k, d", KD)
@pytest.mark.parametrize("n_blocks, n_used", [(1, 0), (1, 1), (3, 2), (4, 4)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_reduce_blocks(layout, n_blocks, n_used, k, d):
    rng = np.random.default_rng(n_blocks * 100 + n_used * 10 + k + d)
    bs = _layout(rng.standard_normal((n_blocks, k, d)) * 1e3, layout)
    bw = _layout(rng.uniform(0, 100, (n_blocks, k)), layout)
    st = _layout(
        np.column_stack([rng.uniform(0, 1e6, n_blocks), rng.integers(0, B, n_blocks)]).astype(
            np.float64
        ),
        layout,
    )
    sums0 = rng.standard_normal((k, d))
    wsums0 = rng.uniform(0, 10, k)
    stats0 = np.array([12.5, 3.0])
    sums, wsums, stats = sums0.copy(), wsums0.copy(), stats0.copy()
    kernels.reduce_blocks(bs, bw, st, n_used, sums, wsums, stats)
    ref = naive.reduce_blocks(bs, bw, st, n_used, sums0, wsums0, stats0)
    # Same additions in the same order: bit-identical.
    np.testing.assert_array_equal(sums, ref[0])
    np.testing.assert_array_equal(wsums, ref[1])
    np.testing.assert_array_equal(stats, ref[2])


# ----- assign --------------------------------------------------------------------------------
@pytest.mark.parametrize("k, d", KD)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_assign(dtype, layout, n, k, d):
    X, centers, _, _ = _data(n, k, d, dtype, layout)
    labels = np.full(n, -7, dtype=np.int32)
    dist = np.full(n, np.nan)
    kernels.assign(X, centers, labels, dist)
    ref_labels, ref_dist = naive.assign(X, centers)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(dist, ref_dist, rtol=RTOL, atol=0)


# ----- distances_to_labels -------------------------------------------------------------------
@pytest.mark.parametrize("k, d", KD)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_distances_to_labels(dtype, layout, n, k, d):
    X, centers, _, rng = _data(n, k, d, dtype, layout)
    labels = _layout(rng.integers(0, k, n).astype(np.int32), layout)  # any label, not nearest
    out = np.full(n, np.nan)
    kernels.distances_to_labels(X, centers, labels, out)
    np.testing.assert_allclose(out, naive.distances_to_labels(X, centers, labels), rtol=RTOL)


# ----- all_distances -------------------------------------------------------------------------
@pytest.mark.parametrize("k, d", KD)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_distances(dtype, layout, n, k, d):
    X, centers, _, _ = _data(n, k, d, dtype, layout)
    out = np.full((n, k), np.nan)
    kernels.all_distances(X, centers, out)
    np.testing.assert_allclose(out, naive.all_distances(X, centers), rtol=RTOL)


# ----- min_sq_dist_update --------------------------------------------------------------------
@pytest.mark.parametrize("d", (1, 2, 8))
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_min_sq_dist_update(dtype, layout, n, d):
    X, centers, _, rng = _data(n, 1, d, dtype, layout)
    point = _layout(centers[0], layout)
    closest = rng.uniform(0, 2 * d, n)
    closest[::3] = np.inf
    closest = _layout(closest, layout)
    out = np.full(n, np.nan)
    kernels.min_sq_dist_update(X, point, closest, out)
    np.testing.assert_allclose(out, naive.min_sq_dist_update(X, point, closest), rtol=RTOL)
    assert (out <= closest).all()


def test_min_sq_dist_update_in_place_on_closest():
    """k-means++ may pass the same buffer as input and output."""
    X, centers, _, _ = _data(B + 3, 1, 3, np.float64, "c")
    closest = np.full(X.shape[0], np.inf)
    ref = naive.min_sq_dist_update(X, centers[0], closest)
    kernels.min_sq_dist_update(X, centers[0], closest, closest)
    np.testing.assert_allclose(closest, ref, rtol=RTOL)


# ----- minibatch_update ----------------------------------------------------------------------
@pytest.mark.parametrize("k, d", KD)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_minibatch_update(layout, k, d):
    rng = np.random.default_rng(k * 10 + d)
    centers0 = rng.standard_normal((k, d))
    wsums0 = rng.uniform(0, 50, k)
    wsums0[0] = 0.0  # a centre that has seen nothing yet jumps to its batch mean
    batch_w = rng.uniform(1, 20, k)
    if k > 1:
        batch_w[-1] = 0.0  # a centre with no batch rows stays where it is
    sums = rng.standard_normal((k, d)) * batch_w[:, None]
    sums_in, batch_w_in = _layout(sums, layout), _layout(batch_w, layout)
    centers, wsums = centers0.copy(), wsums0.copy()
    kernels.minibatch_update(centers, wsums, sums_in, batch_w_in)
    ref_c, ref_w = naive.minibatch_update(centers0, wsums0, sums, batch_w)
    np.testing.assert_allclose(centers, ref_c, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(wsums, ref_w)
    np.testing.assert_allclose(centers[0], sums[0] / batch_w[0], rtol=1e-14)
    if k > 1:
        np.testing.assert_array_equal(centers[-1], centers0[-1])
        assert wsums[-1] == wsums0[-1]


# ----- shifted_moments ----------------------------------------------------------------------
@pytest.mark.parametrize("d", (1, 2, 8))
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_moments(dtype, layout, n, d):
    if not hasattr(kernels, "shifted_moments"):
        pytest.skip("no shifted_moments kernel in this version")
    X, centers, w, _ = _data(n, 1, d, dtype, layout)
    X = _layout(np.asarray(X) * 10 + 1000, layout)  # an offset the shift must absorb
    shift = _layout(np.asarray(X[0], dtype=np.float64), layout)
    nb = kernels.n_blocks(n)
    out = np.full((nb + 1, 2 * d + 2), np.nan)
    kernels.shifted_moments(X, w, shift, out)
    ref = naive.shifted_moments(X, w, shift)
    np.testing.assert_allclose(out[:nb], ref, rtol=1e-10, atol=1e-7)
    assert np.isnan(out[nb]).all()
    # The moments give the weighted mean and variance.
    tot = ref.sum(axis=0)
    mean = shift + tot[:d] / tot[2 * d]
    var = tot[d : 2 * d] / tot[2 * d] - (tot[:d] / tot[2 * d]) ** 2
    ref_mean, ref_var = naive.weighted_mean_var(X, w)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-12)
    np.testing.assert_allclose(var, ref_var, rtol=1e-8, atol=1e-12)


def test_shifted_moments_counts_non_finite_values():
    if not hasattr(kernels, "shifted_moments"):
        pytest.skip("no shifted_moments kernel in this version")
    X = np.arange(30, dtype=np.float64).reshape(10, 3)
    X[2, 1] = np.nan
    X[5, 0] = np.inf
    X[5, 2] = -np.inf
    w = np.linspace(1, 2, 10)
    out = np.empty((1, 8))
    kernels.shifted_moments(X, w, np.zeros(3), out)
    np.testing.assert_allclose(out, naive.shifted_moments(X, w, np.zeros(3)), rtol=1e-12)
    assert out[0, -1] == 3


# ----- tie-breaking --------------------------------------------------------------------------
TIES = [
    # (centres, row, expected label): the row is exactly equidistant from the tied centres.
    (np.array([[0.0], [2.0]]), [1.0], 0),
    (np.array([[2.0], [0.0]]), [1.0], 0),
    (np.array([[5.0], [0.0], [2.0]]), [1.0], 1),
    (np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0]]), [1.0, 1.0], 1),
    (np.array([[3.0, 3.0], [0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]), [1.0, 1.0], 1),
    (np.array([[0.0, 0.0], [3.0, 3.0], [2.0, 0.0], [0.0, 2.0]]), [1.0, 1.0], 0),
    (np.array([[1.0, 1.0], [1.0, 1.0]]), [0.0, 0.0], 0),  # duplicate centres
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("centers, row, expected", TIES)
def test_ties_go_to_the_lowest_index(centers, row, expected, dtype):
    X = np.array([row] * 5, dtype=dtype)
    assert naive.assign(X, centers)[0][0] == expected  # the reference agrees with the rule
    labels = np.empty(5, dtype=np.int32)
    dist = np.empty(5)
    kernels.assign(X, centers, labels, dist)
    assert (labels == expected).all()
    labels = np.full(5, -1, dtype=np.int32)
    bs, bw, st = np.empty((1,) + centers.shape), np.empty((1, centers.shape[0])), np.empty((1, 2))
    kernels.assign_accumulate(X, np.ones(5), centers, labels, bs, bw, st)
    assert (labels == expected).all()
    assert bw[0, expected] == 5


# ----- determinism ---------------------------------------------------------------------------
def _lloyd_totals(X, w, centers, chunk_rows):
    """One E-step over X the way the estimator runs it: block-aligned chunks, then reduction."""
    k, d = centers.shape
    n = X.shape[0]
    nb = kernels.n_blocks(chunk_rows)
    bs, bw, bst = np.empty((nb, k, d)), np.empty((nb, k)), np.empty((nb, 2))
    sums, wsums, stats = np.zeros((k, d)), np.zeros(k), np.zeros(2)
    labels = np.full(n, -1, dtype=np.int32)
    for start in range(0, n, chunk_rows):
        rows = X[start : start + chunk_rows]
        m = rows.shape[0]
        kernels.assign_accumulate(
            rows, w[start : start + m], centers, labels[start : start + m], bs, bw, bst
        )
        kernels.reduce_blocks(bs, bw, bst, kernels.n_blocks(m), sums, wsums, stats)
    return labels, sums, wsums, stats


@pytest.mark.parametrize("dtype", DTYPES)
def test_assign_accumulate_bit_identical_across_threads(dtype, restore_threads):
    two = _two_threads()
    X, centers, w, _ = _data(5 * B + 123, 8, 8, dtype, "readonly", seed=5)
    results = {}
    for threads in (1, two):
        numba.set_num_threads(threads)
        results[threads] = _lloyd_totals(X, w, centers, 8 * B)
    for a, b in zip(results[1], results[two], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_assign_accumulate_bit_identical_across_chunk_sizes(dtype):
    X, centers, w, _ = _data(5 * B + 123, 5, 3, dtype, "c", seed=6)
    ref = _lloyd_totals(X, w, centers, B)
    for chunk_rows in (2 * B, 3 * B, 8 * B):
        for a, b in zip(ref, _lloyd_totals(X, w, centers, chunk_rows), strict=True):
            np.testing.assert_array_equal(a, b)
    # ... and agrees with the reference.
    ref_labels, ref_sums, ref_weights, ref_stats = naive.assign_accumulate(
        X, w, centers, np.full(X.shape[0], -1)
    )
    np.testing.assert_array_equal(ref[0], ref_labels)
    np.testing.assert_allclose(ref[1], ref_sums.sum(axis=0), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(ref[2], ref_weights.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ref[3], ref_stats.sum(axis=0), rtol=1e-10)


def test_other_kernels_identical_across_threads(restore_threads):
    two = _two_threads()
    X, centers, _, _ = _data(3 * B + 7, 4, 3, np.float32, "c", seed=9)
    n = X.shape[0]
    out = {}
    for threads in (1, two):
        numba.set_num_threads(threads)
        lab, dist = np.empty(n, dtype=np.int32), np.empty(n)
        kernels.assign(X, centers, lab, dist)
        alld = np.empty((n, 4))
        kernels.all_distances(X, centers, alld)
        dl = np.empty(n)
        kernels.distances_to_labels(X, centers, lab, dl)
        md = np.empty(n)
        kernels.min_sq_dist_update(X, centers[0], np.full(n, np.inf), md)
        out[threads] = (lab, dist, alld, dl, md)
        if hasattr(kernels, "shifted_moments"):
            mom = np.empty((kernels.n_blocks(n), 2 * 3 + 2))
            kernels.shifted_moments(X, np.ones(n), np.asarray(X[0], dtype=np.float64), mom)
            out[threads] += (mom,)
    for a, b in zip(out[1], out[two], strict=True):
        np.testing.assert_array_equal(a, b)


# ----- k-means++ -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_matches_naive_greedy(dtype, k, weighted):
    rng = np.random.default_rng(k)
    X = rng.standard_normal((500, 3)).astype(dtype)
    X[:100] += 6.0
    w = rng.uniform(0.1, 3.0, 500) if weighted else np.ones(500)
    got = initialization.kmeans_plusplus(X, w, k, np.random.RandomState(3))
    ref, ids = naive.greedy_kmeans_plusplus(X, w, k, np.random.RandomState(3))
    assert got.dtype == np.float64 and got.shape == (k, 3)
    np.testing.assert_array_equal(got, ref)
    assert len(set(ids.tolist())) == k  # distinct rows on continuous data
    # Greedy seeding lowers the potential compared with the first centre alone.
    assert naive.potential(X, got, w) <= naive.potential(X, got[:1], w)


@pytest.mark.parametrize("k", [2, 5])
def test_kmeans_plusplus_matches_sklearn(k):
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(11)
    X = rng.standard_normal((300, 4))
    w = rng.uniform(0.5, 2.0, 300)
    got = initialization.kmeans_plusplus(X, w, k, np.random.RandomState(0))
    ref, _ = kmeans_plusplus(X, k, sample_weight=w, random_state=0)
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_random_rows_distinct_and_weighted():
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    w = np.zeros(10)
    w[[2, 5, 7]] = 1.0
    got = initialization.random_rows(X, w, 3, np.random.RandomState(0))
    assert sorted(got[:, 0].tolist()) == [4.0, 10.0, 14.0]  # exactly the weighted rows
    got = initialization.random_rows(X, np.ones(10), 10, np.random.RandomState(0))
    assert len({tuple(r) for r in got}) == 10


# ----- standardize_rows ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
def test_standardize_rows_rounds_as_numpy(dtype, n):
    rng = np.random.default_rng(n)
    X = (rng.standard_normal((n, 3)) * [1.0, 1e4, 1e-3] + [5.0, -2e5, 0.0]).astype(dtype)
    mean = np.array([4.9, -1.9e5, 1e-4], dtype=dtype)
    std = np.array([1.1, 9e3, 7e-4], dtype=dtype)
    ref = X.copy()
    ref -= mean  # the NumPy reference: subtract, then divide, in X's dtype
    ref /= std
    X.flags.writeable = False
    out = np.empty_like(X)
    kernels.standardize_rows(X, mean, std, out)
    np.testing.assert_array_equal(out, ref)  # bit for bit
    inplace = np.array(X)
    kernels.standardize_rows(inplace, mean, std, inplace)
    np.testing.assert_array_equal(inplace, ref)


# ----- the float32 search is exact -----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, d", [(2, 1), (5, 3), (8, 8), (6, 13), (64, 32)])
def test_float32_search_gives_the_float64_labels_near_ties(dtype, k, d):
    """Centres far from the origin and a float32 roundoff apart, rows among them: the float32
    search cannot tell most of them apart, so its answers are settled in float64; the labels
    and distances are those of the float64 reference, in every kernel that searches."""
    rng = np.random.default_rng(k * d)
    base = rng.uniform(-1e4, 1e4, d)
    centers = base + rng.standard_normal((k, d)) * 2e-3
    n = 3 * B + 17
    X = (base + rng.standard_normal((n, d)) * 3e-3).astype(dtype)
    X[::7] = centers[rng.integers(0, k, X[::7].shape[0])].astype(dtype)  # on a centre
    ref_labels, ref_dist = naive.assign(X, centers)
    labels, dist = np.empty(n, np.int32), np.empty(n)
    kernels.assign(X, centers, labels, dist)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(dist, ref_dist, rtol=RTOL, atol=1e-12)
    nb = kernels.n_blocks(n)
    bs, bw, st = np.empty((nb, k, d)), np.empty((nb, k)), np.empty((nb, 2))
    labels = np.full(n, -1, np.int32)
    kernels.assign_accumulate(X, np.ones(n), centers, labels, bs, bw, st)
    np.testing.assert_array_equal(labels, ref_labels)
    assert st[:, 0].sum() == pytest.approx(ref_dist.sum(), rel=1e-9)
    labels, lower = np.full(n, -1, np.int32), np.zeros(n, np.float32)
    half_gap = np.zeros(k)
    kernels.assign_accumulate_bounded(
        X, np.ones(n), centers, half_gap, 0.0, labels, lower, bs, bw, st, True, True
    )
    np.testing.assert_array_equal(labels, ref_labels)
    others = np.sqrt(naive.all_distances(X, centers) ** 2)
    others[np.arange(n), ref_labels] = np.inf
    # the stored bound is a lower bound on the distance to every other centre (up to its
    # float32 storage, which the bound test's margin covers)
    assert (lower <= others.min(axis=1) * (1 + kernels.BOUND_MARGIN)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, d", [(2, 1), (5, 3), (8, 8), (6, 13), (64, 32)])
def test_float32_search_settles_rows_on_a_bisector(dtype, k, d):
    """Rows a hair from the bisector of two centres, which float32 cannot place: every kernel
    that searches gives the float64 reference's labels (with ``_settle_tile``'s margin set to
    zero, the float64 cases fail: float32 puts some of these rows on the wrong side)."""
    rng = np.random.default_rng(7 * k + d)
    centers = rng.uniform(-1e3, 1e3, d) + rng.standard_normal((k, d))
    n = 2 * B + 33
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, max(k, 2), n)) % k
    t = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-9, -5, n)
    X = ((centers[a] + centers[b]) / 2 + t[:, None] * (centers[b] - centers[a])).astype(dtype)
    ref_labels, _ = naive.assign(X, centers)
    labels, dist = np.empty(n, np.int32), np.empty(n)
    kernels.assign(X, centers, labels, dist)
    np.testing.assert_array_equal(labels, ref_labels)
    nb = kernels.n_blocks(n)
    bs, bw, st = np.empty((nb, k, d)), np.empty((nb, k)), np.empty((nb, 2))
    labels = np.full(n, -1, np.int32)
    kernels.assign_accumulate(X, np.ones(n), centers, labels, bs, bw, st)
    np.testing.assert_array_equal(labels, ref_labels)
    labels, lower = np.full(n, -1, np.int32), np.zeros(n, np.float32)
    kernels.assign_accumulate_bounded(
        X, np.ones(n), centers, np.zeros(k), 0.0, labels, lower, bs, bw, st, True, True
    )
    np.testing.assert_array_equal(labels, ref_labels)
    others = naive.all_distances(X, centers)
    others[np.arange(n), ref_labels] = np.inf
    assert (lower <= others.min(axis=1) * (1 + kernels.BOUND_MARGIN)).all()


@pytest.mark.parametrize("k", [2, 3, 5])
def test_float64_rows_beyond_float32_are_searched_in_float64(k):
    """float64 values past float32's range overflow the float32 search (inf, NaN scores):
    those rows are settled in float64, so every kernel still gives the reference's labels."""
    rng = np.random.default_rng(k)
    centers = np.array([[1e39, 0.0], [-1e39, 0.0], [0.0, 0.0], [3e38, 1.0], [0.0, -5.0]])[:k]
    X = centers[rng.integers(0, k, 600)] + rng.standard_normal((600, 2)) * [1e38, 1.0]
    ref_labels, ref_dist = naive.assign(X, centers)
    labels, dist = np.empty(600, np.int32), np.empty(600)
    kernels.assign(X, centers, labels, dist)
    np.testing.assert_array_equal(labels, ref_labels)
    nb = kernels.n_blocks(600)
    bs, bw, st = np.empty((nb, k, 2)), np.empty((nb, k)), np.empty((nb, 2))
    labels = np.full(600, -1, np.int32)
    kernels.assign_accumulate(X, np.ones(600), centers, labels, bs, bw, st)
    np.testing.assert_array_equal(labels, ref_labels)
    labels, lower = np.full(600, -1, np.int32), np.zeros(600, np.float32)
    kernels.assign_accumulate_bounded(
        X, np.ones(600), centers, np.zeros(k), 0.0, labels, lower, bs, bw, st, True, True
    )
    np.testing.assert_array_equal(labels, ref_labels)
