import numpy as np
from scipy import stats

from reparam import gamma
from tests.specs import FamilySpec


def _scipy_gamma(concentration, rate):
    return stats.gamma(concentration, scale=1 / np.asarray(rate))


# Concentration < 1: jax.random.loggamma's boosted branch and a density singular at 0 (the a ≥ 1
# branch is exercised by beta's and student_t's specs; smaller a in tests/test_implicit_families).
SPECS = [
    FamilySpec(
        module=gamma,
        params=(np.array([0.5, 1.0, 4.0]), np.array([2.0, 0.5, 1.5])),
        scipy_dist=_scipy_gamma,
        has_noise=False,  # no explicit inverse CDF: implicit gradients (families/gamma.py)
        implicit=(0, 1),
        bad_params=(
            ((0.0, 1.0), "concentration"),
            ((1.0, -1.0), "rate"),
            ((np.nan, 1.0), "concentration"),
            ((1.0, np.nan), "rate"),
        ),
        extreme_params=((1e-4, 1e4), (1e-6, 1e6)),
        grad_params=(0.6, 1.5),
    )
]
