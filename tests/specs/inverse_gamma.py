import hypothesis.strategies as st
import numpy as np
from scipy import stats

from reparam import inverse_gamma
from tests.specs import FamilySpec


def _log_uniform(low, high):
    return st.floats(np.log(low), np.log(high)).map(np.exp)


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
        # log G ≈ log(u)/a, so z = s/G passes the float range for a ≲ 0.01 and saturates
        # (families/inverse_gamma.py): finite samples and gradients down to a = 1e-3.
        # The first example always saturates (hypothesis tries the simplest branch first).
        extreme_strategy=st.one_of(
            st.just((1e-3, 1.0)),
            st.tuples(_log_uniform(1e-3, 1e4), _log_uniform(1e-6, 1e6)),
        ),
        # concentration 6: E[z⁴] is finite, so z² has a finite-variance gradient estimator.
        grad_params=(6.0, 1.5),
    )
]
