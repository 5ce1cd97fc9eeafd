import numpy as np
from scipy import stats

from reparam import pareto
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=pareto,
        # concentration 1.5: infinite variance (scipy's inf must be matched), 2.5 and 6 finite.
        params=(np.array([1.5, 2.5, 6.0]), np.array([0.5, 1.0, 3.0])),
        scipy_dist=lambda concentration, scale: stats.pareto(b=concentration, scale=scale),
        # concentration 5: E[z⁴] is finite, so z² has a finite-variance gradient estimator.
        grad_params=(5.0, 1.2),
        bad_params=(
            ((0.0, 1.0), "concentration"),
            ((2.0, -1.0), "scale"),
            ((np.nan, 1.0), "concentration"),
            ((2.0, 0.0), "scale"),
        ),
        # z = scale·exp(ε/α) with ε ≤ 37 (float64) stays below 1e6·e^370 for α ≥ 0.1; for
        # smaller α the distribution itself overflows.
        extreme_params=((0.1, 1e4), (1e-6, 1e6)),
    )
]
