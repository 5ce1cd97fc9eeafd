"""Spec for reparam.low_rank_normal; scipy-based layers live in tests/test_multivariate.py."""

import numpy as np

from reparam import low_rank_normal
from tests.specs import FamilySpec

LOC = np.array([[0.0, 1.0, -1.0, 0.5], [2.0, 0.0, 0.5, -2.0], [-1.5, -1.0, 3.0, 0.0]])
COV_FACTOR = np.array(
    [
        [[1.0, 0.2], [0.5, -0.8], [-0.3, 0.2], [0.0, 1.1]],
        [[0.4, 0.0], [-1.0, 2.0], [0.7, 0.1], [0.3, 0.3]],
        [[2.0, -1.0], [0.0, 1.0], [1.2, -0.6], [0.9, 0.2]],
    ]
)
SCALE_DIAG = np.array([[0.5, 1.0, 0.3, 2.0], [1.0, 0.2, 0.7, 1.5], [0.1, 0.9, 1.3, 0.6]])
NEGATIVE_SCALE = SCALE_DIAG.copy()
NEGATIVE_SCALE[1, 2] = -0.7
NAN_FACTOR = COV_FACTOR.copy()
NAN_FACTOR[0, 1, 1] = np.nan

SPECS = [
    FamilySpec(
        module=low_rank_normal,
        params=(LOC, COV_FACTOR, SCALE_DIAG),
        # As for multivariate_normal: covered in tests/test_multivariate.py.
        scipy_dist=None,
        grad_params=None,
        bad_params=(
            ((LOC, COV_FACTOR, NEGATIVE_SCALE), "scale_diag"),
            ((LOC, COV_FACTOR, np.zeros(4)), "scale_diag"),
            ((LOC, NAN_FACTOR, SCALE_DIAG), "cov_factor"),
        ),
        extreme_params=((-1e6, 1e6), (-1e4, 1e4), (1e-8, 1e8)),
        batch_shape=(3,),
        event_shape=(4,),
        noise_event_shape=(6,),  # d + r: ε_d then ε_r
    )
]
