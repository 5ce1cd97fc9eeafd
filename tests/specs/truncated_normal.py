import hypothesis.strategies as st
import numpy as np
from scipy import stats

from reparam import truncated_normal
from tests.specs import FamilySpec


def _scipy_truncated_normal(loc, scale, low, high):
    return stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)


def _ends(draw):
    """(loc, scale, low, high): the interval [a, a + width] in standard deviations, a up to 60
    from the mode (past 37, Newton on log Φ takes over from ndtri), each end possibly infinite."""
    loc, scale, a, width, open_low, open_high = draw
    low = -np.inf if open_low else loc + scale * a
    high = np.inf if open_high else loc + scale * (a + width)
    return loc, scale, low, high


_EXTREMES = st.tuples(
    st.floats(-1e3, 1e3),
    st.floats(np.log(1e-3), np.log(1e3)).map(np.exp),
    st.floats(-60.0, 60.0),
    st.floats(np.log(1e-3), np.log(40.0)).map(np.exp),
    st.booleans(),
    st.booleans(),
).map(_ends)

SPECS = [
    FamilySpec(
        module=truncated_normal,
        # Both orientations of the sampler: the third interval lies right of the mode (reflected).
        params=(
            np.array([0.3, -1.0, 2.0]),
            np.array([1.5, 0.5, 2.0]),
            np.array([-1.0, -1.5, 3.0]),
            np.array([2.0, 0.0, 9.0]),
        ),
        scipy_dist=_scipy_truncated_normal,
        grad_params=(0.2, 1.3, -0.5, 1.8),
        # The inverse CDF's derivative at fixed ε is the implicit gradient −(∂F/∂θ)/p(z) of every
        # parameter: checked per sample against finite differences of scipy's CDF.
        implicit=(0, 1, 2, 3),
        bad_params=(
            ((0.0, 0.0, -1.0, 1.0), "scale"),
            ((0.0, -1.0, -1.0, 1.0), "scale"),
            ((0.0, np.inf, -1.0, 1.0), "scale"),
            ((np.inf, 1.0, -1.0, 1.0), "loc"),
            ((np.nan, 1.0, -1.0, 1.0), "loc"),
            ((0.0, 1.0, 1.0, 1.0), "low"),
            ((0.0, 1.0, 2.0, -1.0), "high"),
            ((0.0, 1.0, np.nan, 1.0), "low"),
        ),
        extreme_strategy=_EXTREMES,
    )
]
