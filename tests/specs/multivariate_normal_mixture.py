"""multivariate_normal_mixture: parameters carry a component axis and the event is a vector, so
the scipy and Monte-Carlo layers are re-done in tests/test_mvn_mixture.py."""

import hypothesis.strategies as st
import numpy as np

from reparam import multivariate_normal_mixture
from tests.specs import FamilySpec

# Batch of 3 mixtures of K = 2 components in d = 3 (K ≠ d, so that swapped axes fail):
# overlapping and correlated, one narrow component beside a wide one, and well separated.
LOGITS = np.array([[0.3, -0.4], [0.0, 0.0], [1.5, -1.0]])
LOCS = np.array(
    [
        [[-1.0, 0.5, 2.0], [1.0, -0.5, 0.0]],
        [[0.0, 0.0, 0.0], [0.5, 1.0, -1.0]],
        [[-4.0, 3.0, 0.0], [4.0, -3.0, 1.0]],
    ]
)
SCALE_TRILS = np.array(
    [
        [
            [[1.0, 0.0, 0.0], [0.5, 0.8, 0.0], [-0.3, 0.2, 1.5]],
            [[0.4, 0.0, 0.0], [-1.0, 2.0, 0.0], [0.7, 0.1, 0.3]],
        ],
        [
            [[0.2, 0.0, 0.0], [0.1, 0.3, 0.0], [0.0, -0.1, 0.25]],
            [[2.0, 0.0, 0.0], [1.0, 1.5, 0.0], [-1.0, 0.5, 3.0]],
        ],
        [
            [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.2, 0.2, 0.5]],
            [[1.0, 0.0, 0.0], [0.9, 0.4, 0.0], [0.0, 0.0, 1.0]],
        ],
    ]
)


def _with(index: int, entry: tuple, value: float) -> tuple[np.ndarray, ...]:
    """The spec's parameters with one entry of parameter `index` replaced."""
    params = [LOGITS.copy(), LOCS.copy(), SCALE_TRILS.copy()]
    params[index][entry] = value
    return tuple(params)


def _lower_triangular(diagonal, below):
    """(K, d, d) lower-triangular matrices from K·d diagonal and K·d(d−1)/2 entries below it."""
    tril = np.zeros((2, 3, 3))
    tril[:, [0, 1, 2], [0, 1, 2]] = np.reshape(diagonal, (2, 3))
    tril[:, [1, 2, 2], [0, 0, 1]] = np.reshape(below, (2, 3))
    return tril


def _floats(low, high, size, log=False):
    elements = st.floats(np.log(low), np.log(high)) if log else st.floats(low, high)
    values = st.lists(elements, min_size=size, max_size=size).map(np.array)
    return values.map(np.exp) if log else values


SPECS = [
    FamilySpec(
        module=multivariate_normal_mixture,
        params=(LOGITS, LOCS, SCALE_TRILS),
        # No batched scipy mixture, and the scalar-parameter MC layer does not apply; log_prob vs
        # scipy, moments, KS of marginals/projections, MC gradients of every parameter entry and
        # the implicit Jacobian vs the conditional CDFs are in tests/test_mvn_mixture.py.
        scipy_dist=None,
        grad_params=None,
        # transform's JVP is the implicit gradient, not the derivative at fixed ε.
        has_noise=True,
        transform_jvp_is_pathwise=False,
        noise_event_shape=(4,),  # d normals, then one uniform
        bad_params=(
            (_with(2, (1, 0, 2, 2), 0.0), "scale_trils"),
            (_with(2, (0, 1, 0, 0), -0.5), "scale_trils"),
            (_with(2, (2, 0, 1, 1), np.inf), "scale_trils"),
            (_with(2, (2, 1, 2, 0), -np.inf), "scale_trils"),
            (_with(0, (0, 1), np.nan), "logits"),
            (_with(0, (1, 0), np.inf), "logits"),
            ((np.full((3, 2), -np.inf), LOCS, SCALE_TRILS), "logits"),
            (_with(1, (2, 0, 1), np.nan), "locs"),
            (_with(1, (0, 1, 2), -np.inf), "locs"),
        ),
        extreme_strategy=st.tuples(
            _floats(-30.0, 30.0, 2),
            _floats(-1e6, 1e6, 6).map(lambda x: x.reshape(2, 3)),
            st.tuples(_floats(1e-6, 1e6, 6, log=True), _floats(-1e3, 1e3, 6)).map(
                lambda parts: _lower_triangular(*parts)
            ),
        ),
        batch_shape=(3,),
        event_shape=(3,),
    )
]
