import hypothesis.strategies as st
import numpy as np
from scipy import stats

from reparam import uniform
from tests.specs import FamilySpec

# low anywhere in ±1e6, width log-uniform in [1e-8, 1e8]: high = low + width > low always, since
# 1e-8 is far above the float64 spacing near 1e6 (~1e-10).
_LOW_AND_HIGH = st.tuples(
    st.floats(-1e6, 1e6), st.floats(np.log(1e-8), np.log(1e8)).map(np.exp)
).map(lambda low_width: (low_width[0], low_width[0] + low_width[1]))

SPECS = [
    FamilySpec(
        module=uniform,
        params=(np.array([-1.0, 0.0, 2.0]), np.array([0.5, 1.0, 5.0])),
        scipy_dist=lambda low, high: stats.uniform(loc=low, scale=high - low),
        grad_params=(-0.4, 1.1),
        bad_params=(
            ((1.0, 1.0), "low"),
            ((2.0, 1.0), "high"),
            ((np.nan, 1.0), "low"),
            ((0.0, np.nan), "high"),
        ),
        extreme_strategy=_LOW_AND_HIGH,
    )
]
