import hypothesis.strategies as st
import numpy as np
from scipy import stats

from reparam import pareto
from tests.specs import FamilySpec


def _log_uniform(low, high):
    return st.floats(np.log(low), np.log(high)).map(np.exp)


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
        # Below α ≈ 0.05 draws pass the float range and saturate (families/pareto.py): finite
        # samples and gradients down to α = 1e-3.
        # The first example always saturates (hypothesis tries the simplest branch first).
        extreme_strategy=st.one_of(
            st.just((1e-3, 1.0)),
            st.tuples(_log_uniform(1e-3, 1e4), _log_uniform(1e-6, 1e6)),
        ),
    )
]
