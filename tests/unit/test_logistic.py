"""The BLAS-free logistic regression behind the false-negative detector (negmine.core.logistic)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from negmine.core.logistic import LogisticModel, cholesky_solve, fit_logistic


def _data(n: int = 3000, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.2, 5.0, d) + rng.normal(size=d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] - 1.5)))).astype(np.int64)
    return x, y, np.where(y == 0, 1.5, 1.0)


def test_cholesky_solve_by_hand():
    a = np.array([[4.0, 2.0, 0.0], [2.0, 5.0, 1.0], [0.0, 1.0, 3.0]])
    z = cholesky_solve(a, np.array([2.0, 3.0, 4.0]))
    np.testing.assert_allclose(a @ z, [2.0, 3.0, 4.0], rtol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_solve(np.array([[1.0, 2.0], [2.0, 1.0]]), np.ones(2))


def test_the_fit_is_the_optimum_of_the_penalised_objective():
    """At the returned coefficients the gradient of C·Σ w·logloss + ½‖β‖² (intercept unpenalised)
    vanishes, and moving any coefficient raises the objective."""
    x, y, w = _data()
    beta = fit_logistic(x, y, w, c=0.7)
    xa = np.concatenate([np.ones((len(x), 1)), x], axis=1)

    def obj(b: np.ndarray) -> float:
        z = xa @ b
        return float(0.7 * np.sum(w * (np.logaddexp(0, z) - y * z)) + 0.5 * np.sum(b[1:] ** 2))

    p = 1 / (1 + np.exp(-(xa @ beta)))
    grad = xa.T @ (0.7 * w * (p - y)) + np.r_[0.0, beta[1:]]
    assert np.abs(grad).max() < 1e-6
    for j in range(len(beta)):
        for eps in (1e-3, -1e-3):
            b = beta.copy()
            b[j] += eps
            assert obj(b) > obj(beta)


@pytest.mark.extra("detect")
def test_probabilities_match_scikit_learns_logistic_regression_at_a_tight_tolerance():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, w = _data()
    sk = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000))
    sk.fit(x, y, logisticregression__sample_weight=w)
    ours = LogisticModel().fit(x, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict_proba(x), sk.predict_proba(x), atol=1e-7)


def test_warm_start_reaches_the_same_optimum():
    x, y, w = _data()
    cold = LogisticModel(knots=(0.25, 0.5, 0.75)).fit(x, y, sample_weight=w)
    warm = LogisticModel(knots=(0.25, 0.5, 0.75), warm_start=True)
    warm.fit(x[:2000], y[:2000]).fit(x, y, sample_weight=w)
    np.testing.assert_allclose(warm.predict_proba(x), cold.predict_proba(x), atol=1e-9)


def test_a_constant_column_is_harmless():
    x, y, w = _data()
    x[:, 1] = 3.0
    m = LogisticModel().fit(x, y, sample_weight=w)
    assert m.coef_ is not None and m.coef_[2] == 0.0
    assert np.isfinite(m.predict_proba(x)).all()


_HASH = """
import hashlib, numpy as np
from negmine.core.logistic import LogisticModel
rng = np.random.default_rng(3)
x = rng.normal(size=(20000, 11)) * rng.uniform(0.1, 10, 11)
y = (rng.random(20000) < 1 / (1 + np.exp(-(x[:, 0] / 3 - 2)))).astype(int)
for knots in ((), (0.25, 0.5, 0.75)):
    m = LogisticModel(knots=knots).fit(x, y, sample_weight=np.where(y == 0, 1.3, 1.0))
    print(hashlib.sha256(m.predict_proba(x).tobytes()).hexdigest())
"""


def test_the_same_bytes_under_every_openblas_kernel_and_thread_count():
    """The fit and the probabilities never touch BLAS: the bytes are the same whichever OpenBLAS
    kernel (some machines of this class set OPENBLAS_CORETYPE=Haswell) or thread count runs."""
    kernels = ["", "Haswell", "Sandybridge"]
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        kernels = [""]
    seen = set()
    for threads in ("1", "2"):
        for kernel in kernels:
            env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
            env.pop("OPENBLAS_CORETYPE", None)
            if kernel:
                env["OPENBLAS_CORETYPE"] = kernel
            out = subprocess.run([sys.executable, "-c", _HASH], env=env, capture_output=True, text=True, check=True)
            seen.add(out.stdout)
    assert len(seen) == 1, seen


def test_latent_basis_spans_the_top_singular_subspace():
    """The latent view's BLAS-free subspace iteration finds the top right singular subspace of a
    matrix with a clear spectral gap (cosines of the principal angles to numpy's SVD ≈ 1), as an
    orthonormal basis; identical rows get identical coordinates."""
    sparse = pytest.importorskip("scipy.sparse")
    from negmine.text.detector_views import latent_basis

    rng = np.random.default_rng(0)
    u = np.linalg.qr(rng.normal(size=(300, 6)))[0]
    v = np.linalg.qr(rng.normal(size=(80, 6)))[0]
    m = (u * [50, 40, 30, 20, 15, 10]) @ v.T + 0.01 * rng.normal(size=(300, 80))
    m[17] = m[203]
    basis = latent_basis(sparse.csr_matrix(m), 6)
    np.testing.assert_allclose(basis.T @ basis, np.eye(6), atol=1e-10)
    top = np.linalg.svd(m, full_matrices=False)[2][:6].T
    assert np.linalg.svd(top.T @ basis, compute_uv=False).min() > 0.999
    coords = sparse.csr_matrix(m) @ basis
    assert coords[17].tobytes() == coords[203].tobytes()


_DETECTOR = """
import hashlib, sys, numpy as np
sys.path.insert(0, {tests!r})
from unit.test_detector import planted
from negmine.text.detector import Detector, _tfidf, second_view
data, cand = planted(near=True)
emb = np.random.default_rng(5).normal(size=(len(data.corpus), 24)).astype(np.float32)
h = hashlib.sha256()
for model in ("logistic", "spline"):
    for e in (None, emb):
        h.update(Detector(model=model).fit_predict(data, cand, seed=2, doc_embeddings=e).probability.tobytes())
h.update(second_view(data, cand, _tfidf(data, cand)).cells.tobytes())
print(h.hexdigest())
"""


@pytest.mark.extra("detect")
def test_the_detector_gives_the_same_bytes_under_every_openblas_kernel():
    """End to end: the detector's probabilities (both linear models, lexical and dense miners) and
    the latent second view are the same bytes under each OpenBLAS kernel (scikit-learn's lbfgs and
    TruncatedSVD were not)."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("OpenBLAS kernels are selected on x86-64 Linux")
    from pathlib import Path

    code = _DETECTOR.format(tests=str(Path(__file__).resolve().parents[1]))
    seen = set()
    for kernel in ("", "Haswell", "Sandybridge"):
        env = {**os.environ}
        env.pop("OPENBLAS_CORETYPE", None)
        if kernel:
            env["OPENBLAS_CORETYPE"] = kernel
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        seen.add(out.stdout)
    assert len(seen) == 1, seen
