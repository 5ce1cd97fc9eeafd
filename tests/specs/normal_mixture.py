"""normal_mixture: parameters carry a component axis, so several generic layers are re-done in
tests/test_normal_mixture.py (see the comments on the fields below)."""

import hypothesis.strategies as st
import numpy as np
from scipy import stats
from scipy.special import softmax

from reparam import normal_mixture
from tests.specs import FamilySpec

# Batch of 3 mixtures of K = 3 components (rows): overlapping, equal-weight, and well separated.
LOGITS = np.array([[0.3, -0.4, 0.0], [0.0, 0.0, 0.0], [2.0, -1.0, 0.5]])
LOCS = np.array([[-1.0, 1.5, 4.0], [0.0, 0.5, -0.5], [-3.0, 3.0, 0.0]])
SCALES = np.array([[0.6, 1.2, 0.3], [1.0, 2.0, 0.5], [0.2, 0.2, 5.0]])


def expectation(f, params) -> float:
    """E[f(z)] = Σₖ wₖ ∫ f(z) N(z; locₖ, scaleₖ²) dz for one mixture (params of shape (K,)).

    The quadrature of f · Σₖ wₖ φₖ, split by linearity into one quadrature per component, each
    over its own scale (a single adaptive quadrature can miss a narrow component).
    """
    logits, locs, scales = (np.asarray(p, np.float64) for p in params)
    weights = softmax(logits)
    return sum(
        w * stats.norm(m, s).expect(f, epsabs=1e-13, epsrel=1e-12, limit=500)
        for w, m, s in zip(weights, locs, scales, strict=True)
    )


def _components(elements):
    return st.lists(elements, min_size=3, max_size=3).map(np.array)


SPECS = [
    FamilySpec(
        module=normal_mixture,
        params=(LOGITS, LOCS, SCALES),
        # scipy has no vectorized normal mixture; log_prob, moments, KS and the implicit
        # gradient against the mixture CDF are in tests/test_normal_mixture.py.
        scipy_dist=None,
        # grad_params are scalars per parameter; the MC-gradient layer runs per element of every
        # parameter vector in tests/test_normal_mixture.py, with `expectation` below.
        grad_params=None,
        expectation=expectation,
        # ε exists (noise/transform, event shape (K + 1,)), but transform's JVP is the implicit
        # gradient, not the derivative of ε ↦ z at fixed ε, so check_grads on transform cannot
        # apply; the local-derivative layer is in tests/test_normal_mixture.py.
        has_noise=True,
        transform_jvp_is_pathwise=False,
        noise_event_shape=(4,),
        bad_params=(
            ((np.zeros(2), np.zeros(2), np.array([1.0, 0.0])), "scales"),
            ((np.zeros(2), np.zeros(2), np.array([1.0, -1.0])), "scales"),
            ((np.zeros(2), np.zeros(2), np.array([1.0, np.inf])), "scales"),
            ((np.array([0.0, np.nan]), np.zeros(2), np.ones(2)), "logits"),
            ((np.array([np.inf, 0.0]), np.zeros(2), np.ones(2)), "logits"),
            ((np.full(2, -np.inf), np.zeros(2), np.ones(2)), "logits"),
            ((np.zeros(2), np.array([np.nan, 0.0]), np.ones(2)), "locs"),
            ((np.zeros(2), np.array([np.inf, 0.0]), np.ones(2)), "locs"),
        ),
        extreme_strategy=st.tuples(
            _components(st.floats(-30.0, 30.0)),
            _components(st.floats(-1e6, 1e6)),
            _components(st.floats(np.log(1e-8), np.log(1e8))).map(np.exp),
        ),
    )
]
