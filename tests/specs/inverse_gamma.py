import numpy as np
from scipy import stats

from reparam import inverse_gamma
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=inverse_gamma,
        # concentration 0.8: infinite mean and variance, 1.5: infinite variance (scipy's inf).
        params=(np.array([0.8, 1.5, 6.0]), np.array([0.5, 1.0, 3.0])),
        scipy_dist=lambda concentration, scale: stats.invgamma(concentration, scale=scale),
        has_noise=False,  # scale / Gamma draw: implicit in the concentration
        # z = s/G at fixed Gamma CDF keeps the inverse gamma's CDF Q(a, s/z): per sample, dz/da is
        # −(∂F/∂a)/p(z).
        implicit=(0,),
        bad_params=(
            ((0.0, 1.0), "concentration"),
            ((1.0, -1.0), "scale"),
            ((np.nan, 1.0), "concentration"),
            ((1.0, np.nan), "scale"),
        ),
        # log G ≈ log(u)/a, so z = s/G overflows for a ≲ 0.02; the range stays where it cannot.
        extreme_params=((0.1, 1e4), (1e-6, 1e6)),
        # concentration 6: E[z⁴] is finite, so z² has a finite-variance gradient estimator.
        grad_params=(6.0, 1.5),
    )
]
