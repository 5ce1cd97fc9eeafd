import numpy as np
from scipy import special, stats

from reparam import half_cauchy
from tests.specs import TEST_FUNCTIONS, FamilySpec


def expectation(f, params):
    """Closed forms: both functions are even, so E f(|Y|) = E f(Y) for Y ~ Cauchy(0, scale)
    (tests/specs/cauchy.py): E cos = e^(−scale), E exp(−X²) = erfcx(scale)."""
    (scale,) = params
    if f is TEST_FUNCTIONS["cos"]:
        return np.exp(-scale)
    if f is TEST_FUNCTIONS["gauss"]:
        return special.erfcx(scale)
    raise KeyError(f)


SPECS = [
    FamilySpec(
        module=half_cauchy,
        params=(np.array([0.5, 1.0, 3.0]),),
        scipy_dist=lambda scale: stats.halfcauchy(scale=scale),
        grad_params=(1.3,),
        # z and z² have no expectation under a half-Cauchy; bounded f do.
        functions=("gauss", "cos"),
        expectation=expectation,
        bad_params=(((0.0,), "scale"), ((-1.0,), "scale"), ((np.nan,), "scale")),
        extreme_params=((1e-8, 1e8),),
    )
]
