"""Finite-difference gradient checks in float64, with the relative error they are judged by."""

import numpy as np

TOLERANCE = 1e-6


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Relative error ||a - n|| / (||a|| + ||n||), the CS231n-style gradient-check report."""
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / max(denom, 1e-300))


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar f() with respect to x, perturbed in place."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad
