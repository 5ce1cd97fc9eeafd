import numpy as np
from scipy import stats

from reparam import weibull
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=weibull,
        params=(np.array([0.5, 1.0, 3.0]), np.array([0.7, 1.5, 4.0])),
        scipy_dist=lambda scale, concentration: stats.weibull_min(c=concentration, scale=scale),
        grad_params=(1.2, 1.7),
        bad_params=(
            ((1.0, 0.0), "concentration"),
            ((-1.0, 1.0), "scale"),
            ((1.0, -2.0), "concentration"),
            ((np.nan, 1.0), "scale"),
        ),
        # z = scale·ε^(1/k) with ε ≤ 37 (float64) stays below 1e8·e^(3.7/k), finite for k ≥ 0.01;
        # for smaller k the distribution itself overflows. tests/test_explicit_families.py checks k
        # down to 1e-8 (samples saturate at 0 or inf, never NaN).
        extreme_params=((1e-8, 1e8), (0.01, 1e8)),
    )
]
