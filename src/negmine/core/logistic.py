"""L2-regularised logistic regression whose result does not depend on the BLAS kernel.

scikit-learn's ``LogisticRegression`` (lbfgs) goes through BLAS for its products, and BLAS kernels
sum in different orders: on one machine the false-negative detector's probabilities differed in the
last bits between ``OPENBLAS_CORETYPE`` settings (default, Haswell, Sandybridge), so a candidate
within an ulp of a detector threshold could be kept on one machine and dropped on another. This
fit never calls BLAS or LAPACK: every product is a numpy elementwise operation or ``np.einsum``
without ``optimize`` (numpy's own loops), and the Newton system is solved by a Cholesky
factorisation written out here. The same inputs give the same bytes whatever BLAS is loaded, with
however many threads.

The objective is scikit-learn's for ``C``: ``C · Σ wᵢ · logloss(yᵢ, σ(xᵢ·β + b)) + ½‖β‖²`` (the
intercept ``b`` is not penalised); it is strictly convex, so this Newton solver reaches the same
optimum as lbfgs, to a far tighter tolerance (lbfgs stops at a gradient of 1e-4).
:class:`LogisticModel` standardises the features first (as ``StandardScaler`` would) and
optionally adds hinge columns (the detector's ``spline`` model).
"""

from __future__ import annotations

import numpy as np

#: Newton stops when no coefficient moves by more than this (in standardised units)
TOL = 1e-10
MAX_ITER = 100


def _gram(xt: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``x diag(s) xᵀ`` of a feature-major ``xt`` (``d × n``) with numpy's own loops (no BLAS): one
    row of the upper triangle per call."""
    xs = xt * s[None, :]
    d = xt.shape[0]
    g = np.empty((d, d))
    for j in range(d):
        g[j, j:] = np.einsum("ki,i->k", xt[j:], xs[j])
        g[j:, j] = g[j, j:]
    return g


def cholesky_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``a z = b`` for a symmetric positive-definite ``a`` (float64, ``d × d``, small) by a
    Cholesky factorisation and two triangular solves written with numpy elementwise operations."""
    a = np.array(a, dtype=np.float64)
    d = a.shape[0]
    low = np.zeros_like(a)
    for k in range(d):
        piv = a[k, k]
        if not piv > 0:
            raise np.linalg.LinAlgError("matrix is not positive definite")
        lkk = np.sqrt(piv)
        low[k, k] = lkk
        col = a[k + 1:, k] / lkk
        low[k + 1:, k] = col
        a[k + 1:, k + 1:] -= col[:, None] * col[None, :]
    z = np.zeros(d)
    for i in range(d):  # forward: low · z = b
        z[i] = (b[i] - np.sum(low[i, :i] * z[:i])) / low[i, i]
    out = np.zeros(d)
    for i in range(d - 1, -1, -1):  # back: lowᵀ · out = z
        out[i] = (z[i] - np.sum(low[i + 1:, i] * out[i + 1:])) / low[i, i]
    return out


def _logaddexp0(z: np.ndarray) -> np.ndarray:
    """``log(1 + exp(z))``, stable."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def fit_logistic(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, c: float = 1.0,
                 start: np.ndarray | None = None) -> np.ndarray:
    """Coefficients ``[b, β₁, …, β_d]`` minimising the module's objective (Newton with a
    backtracking line search). ``start``: coefficients to start from (a warm start); by default
    no slope and the intercept at the weighted base rate."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    xt = np.empty((d + 1, n))  # feature-major: every pass below runs along contiguous rows
    xt[0] = 1.0
    xt[1:] = x.T
    pen = np.ones(d + 1)
    pen[0] = 0.0
    cw = c * w
    if start is not None and len(start) == d + 1:
        beta = np.array(start, dtype=np.float64)
    else:
        rate = float(np.clip(np.sum(w * y) / max(float(np.sum(w)), 1e-300), 1e-6, 1 - 1e-6))
        beta = np.zeros(d + 1)
        beta[0] = np.log(rate / (1.0 - rate))

    def objective(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.einsum("ji,j->i", xt, b)
        return float(np.sum(cw * (_logaddexp0(z) - y * z)) + 0.5 * np.sum(pen * b * b)), z

    f, z = objective(beta)
    for _ in range(MAX_ITER):
        p = _sigmoid(z)
        grad = np.einsum("ji,i->j", xt, cw * (p - y)) + pen * beta
        hess = _gram(xt, cw * p * (1.0 - p)) + np.diag(pen)
        hess[0, 0] += 1e-12 * max(1.0, float(np.sum(cw)))  # all-one-class: keep the intercept's pivot positive
        step = cholesky_solve(hess, grad)
        t = 1.0
        while True:
            cand = beta - t * step
            fc, zc = objective(cand)
            if fc <= f - 1e-4 * t * float(np.sum(grad * step)) or t < 1e-10:
                break
            t *= 0.5
        moved = float(np.max(np.abs(cand - beta)))
        beta, f, z = cand, fc, zc
        if moved < TOL:
            break
    return beta


class LogisticModel:
    """Standardise (and optionally add hinge columns at the training quantiles ``knots``), then
    fit :func:`fit_logistic`. ``warm_start``: each :meth:`fit` starts where the last ended (the
    detector's folds share most of their training rows). The interface is the part of
    scikit-learn's the detector uses: ``fit(x, y, sample_weight=)`` and ``predict_proba(x)``."""

    def __init__(self, c: float = 1.0, knots: tuple[float, ...] = (), warm_start: bool = False) -> None:
        self.c = c
        self.knots = tuple(knots)
        self.warm_start = warm_start
        self.coef_: np.ndarray | None = None

    def _basis(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if not self.knots:
            return x
        return np.concatenate([x, *(np.maximum(0.0, x - t[None, :]) for t in self.knots_)], axis=1)

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LogisticModel:
        x = np.asarray(x, dtype=np.float64)
        if self.knots:
            self.knots_ = np.quantile(x, self.knots, axis=0)
        xb = self._basis(x)
        self.mean_ = xb.mean(axis=0)
        sd = xb.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)  # a constant column stays constant (0), as StandardScaler
        start = self.coef_ if self.warm_start else None
        self.coef_ = fit_logistic((xb - self.mean_) / self.scale_, y, sample_weight, self.c, start)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("LogisticModel.predict_proba before fit")
        xs = (self._basis(x) - self.mean_) / self.scale_
        return np.einsum("ij,j->i", xs, self.coef_[1:]) + self.coef_[0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = _sigmoid(self.decision_function(x))
        return np.stack([1.0 - p, p], axis=1)
