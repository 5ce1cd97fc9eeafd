"""Spec for reparam.multivariate_normal; scipy-based layers live in tests/test_multivariate.py."""

import numpy as np

from reparam import multivariate_normal
from tests.specs import FamilySpec

LOC = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5], [-1.5, -1.0, 3.0]])
SCALE_TRIL = np.array(
    [
        [[1.0, 0.0, 0.0], [0.5, 0.8, 0.0], [-0.3, 0.2, 1.5]],
        [[0.4, 0.0, 0.0], [-1.0, 2.0, 0.0], [0.7, 0.1, 0.3]],
        [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.2, -0.6, 0.9]],
    ]
)
NEGATIVE_DIAGONAL = SCALE_TRIL.copy()
NEGATIVE_DIAGONAL[1, 2, 2] = -0.3
ZERO_DIAGONAL = SCALE_TRIL.copy()
ZERO_DIAGONAL[0, 0, 0] = 0.0
NAN_LOC = LOC.copy()
NAN_LOC[2, 1] = np.nan

SPECS = [
    FamilySpec(
        module=multivariate_normal,
        params=(LOC, SCALE_TRIL),
        # Multivariate: scipy.stats has no batched frozen MVN and the scalar-parameter MC layer
        # does not apply; tests/test_multivariate.py covers log_prob/entropy vs scipy, KS of
        # marginals and projections, and MC gradients of E[z], E[z zᵀ] vs closed forms.
        scipy_dist=None,
        grad_params=None,
        bad_params=(
            ((LOC, NEGATIVE_DIAGONAL), "scale_tril"),
            ((LOC, ZERO_DIAGONAL), "scale_tril"),
            ((NAN_LOC, SCALE_TRIL), "loc"),
        ),
        extreme_params=((-1e6, 1e6), (1e-8, 1e8)),
        batch_shape=(3,),
        event_shape=(3,),
    )
]
