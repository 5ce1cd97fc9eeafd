import numpy as np
from scipy import stats

from reparam import cauchy
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=cauchy,
        params=(np.array([-1.0, 0.0, 2.5]), np.array([0.5, 1.0, 3.0])),
        scipy_dist=lambda loc, scale: stats.cauchy(loc, scale),
        grad_params=(0.3, 1.2),
        # z and z² have no expectation under a Cauchy; bounded f do.
        functions=("gauss", "cos"),
        bad_params=(((0.0, 0.0), "scale"), ((0.0, -1.0), "scale"), ((np.nan, 1.0), "loc")),
        extreme_params=((-1e6, 1e6), (1e-8, 1e8)),
    )
]
