import numpy as np
from scipy import stats

from reparam import von_mises
from tests.specs import FamilySpec


def _scipy_von_mises(loc, concentration):
    # scipy's support is [loc − π, loc + π] (ours is [−π, π)): the KS test needs the two to agree
    # on z's CDF up to a constant shift of P(ω > π − |loc|), negligible for the locs and
    # concentrations below; loc = 0 in grad_params, where the quadrature is exact.
    return stats.vonmises(concentration, loc)


SPECS = [
    FamilySpec(
        module=von_mises,
        # κ = 0.5 and 30 use the Fourier-series CDF in float64, κ = 100 the normal approximation.
        params=(np.array([0.0, 0.5, -1.0]), np.array([0.5, 30.0, 100.0])),
        scipy_dist=_scipy_von_mises,
        grad_params=(0.0, 2.0),
        # No parameter-free ε: a rejection sampler (see reparam/families/von_mises.py); identity and
        # transform layers do not apply, implicit gradients are checked instead.
        has_noise=False,
        implicit=(1,),
        bad_params=(
            ((0.0, 0.0), "concentration"),
            ((0.0, -1.0), "concentration"),
            ((0.0, np.inf), "concentration"),
            ((0.0, np.nan), "concentration"),
            ((np.nan, 1.0), "loc"),
        ),
        extreme_params=((-10.0, 10.0), (1e-4, 1e4)),
    )
]
