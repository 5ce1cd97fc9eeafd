import numpy as np
from scipy import stats

from reparam import generalized_normal
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=generalized_normal,
        # power 0.7 (heavier than Laplace, cusp at loc), 2 (normal), 5 (near-uniform).
        params=(np.array([-1.0, 0.0, 2.5]), np.array([0.5, 1.0, 3.0]), np.array([0.7, 2.0, 5.0])),
        scipy_dist=lambda loc, scale, power: stats.gennorm(power, loc, scale),
        has_noise=False,  # sign·Gamma(1/β)^(1/β): implicit in the power
        # At fixed key the draw keeps its CDF ½ ± ½·P(1/β, |y|^β) (explicit in loc and scale).
        implicit=(2,),
        bad_params=(
            ((0.0, 0.0, 2.0), "scale"),
            ((0.0, 1.0, -1.0), "power"),
            ((np.nan, 1.0, 2.0), "loc"),
            ((0.0, 1.0, 0.0), "power"),
        ),
        # G^(1/β) ≈ (1/β)^(1/β) overflows for β ≲ 0.01: the range starts well above that.
        extreme_params=((-1e6, 1e6), (1e-6, 1e6), (0.1, 1e3)),
        grad_params=(0.3, 1.2, 1.5),
    )
]
