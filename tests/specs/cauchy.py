import numpy as np
from scipy import special, stats

from reparam import cauchy
from tests.specs import TEST_FUNCTIONS, FamilySpec


def expectation(f, params):
    """Closed forms (scipy's quadrature of cos against the heavy tails stops at its subdivision
    limit ~1e-6 off): E cos X = cos(loc) e^(−scale) (the characteristic function at 1), and
    E exp(−X²) = Re w(loc + i scale), w the Faddeeva function (a Voigt profile)."""
    loc, scale = params
    if f is TEST_FUNCTIONS["cos"]:
        return np.cos(loc) * np.exp(-scale)
    if f is TEST_FUNCTIONS["gauss"]:
        return special.wofz(loc + 1j * scale).real
    raise KeyError(f)


SPECS = [
    FamilySpec(
        module=cauchy,
        params=(np.array([-1.0, 0.0, 2.5]), np.array([0.5, 1.0, 3.0])),
        scipy_dist=lambda loc, scale: stats.cauchy(loc, scale),
        grad_params=(0.3, 1.2),
        # z and z² have no expectation under a Cauchy; bounded f do.
        functions=("gauss", "cos"),
        expectation=expectation,
        bad_params=(((0.0, 0.0), "scale"), ((0.0, -1.0), "scale"), ((np.nan, 1.0), "loc")),
        extreme_params=((-1e6, 1e6), (1e-8, 1e8)),
    )
]
