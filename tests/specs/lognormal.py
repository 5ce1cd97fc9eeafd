import numpy as np
from scipy import stats

from reparam import lognormal
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=lognormal,
        params=(np.array([-0.5, 0.0, 0.7]), np.array([0.3, 0.6, 1.0])),
        scipy_dist=lambda loc, scale: stats.lognorm(s=scale, scale=np.exp(loc)),
        grad_params=(0.2, 0.5),
        bad_params=(((0.0, 0.0), "scale"), ((0.0, -1.0), "scale"), ((np.nan, 1.0), "loc")),
        # exp(loc + scale·ε) is finite only while |loc + scale·ε| < 709: this range keeps it so for
        # |ε| < 10. tests/test_explicit_families.py checks scale up to 1e8 (saturating, no NaN).
        extreme_params=((-200.0, 200.0), (1e-8, 50.0)),
    )
]
