import numpy as np
from scipy import stats

from reparam import beta
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=beta,
        params=(np.array([0.5, 1.0, 3.0]), np.array([2.0, 0.7, 5.0])),
        scipy_dist=lambda concentration1, concentration0: stats.beta(
            concentration1, concentration0
        ),
        grad_params=(1.5, 0.6),
        has_noise=False,  # no explicit inverse CDF: implicit gradients (families/beta.py)
        # No per-sample CDF test: z = G1/(G1 + G0) is a valid reparameterization whose per-sample
        # gradient is not −(∂F/∂θ)/p(z) of the beta CDF (it depends on G0 too); the gamma-level
        # identity and the Monte-Carlo layer cover it (tests/test_implicit_families.py).
        implicit=(),
        bad_params=(
            ((0.0, 1.0), "concentration1"),
            ((1.0, -2.0), "concentration0"),
            ((np.nan, 1.0), "concentration1"),
        ),
        extreme_params=((1e-4, 1e4), (1e-4, 1e4)),
    )
]
