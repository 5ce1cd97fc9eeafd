"""power_spherical in the generic layers that need no scipy law: same-key bits, check_grads of
log_prob, dtypes and shapes, jit/vmap/grad, extremes and bad input. Its distribution, moments,
KL and Monte-Carlo gradients are checked in tests/test_spherical.py."""

import hypothesis.strategies as st
import numpy as np

from reparam import power_spherical
from tests.specs import FamilySpec

_LOC = np.array([[1.0, 0.0, 0.0], [0.6, 0.0, 0.8], [0.0, -1.0, 0.0]])

# Unit vectors in R^3, e₁ itself included (the Householder reflection's degenerate case).
_UNIT = st.one_of(
    st.just((1.0, 0.0, 0.0)),
    st.tuples(*[st.floats(-1.0, 1.0)] * 3)
    .filter(lambda v: np.linalg.norm(v) > 0.1)
    .map(lambda v: tuple(np.asarray(v) / np.linalg.norm(v))),
)

SPECS = [
    FamilySpec(
        module=power_spherical,
        params=(_LOC, np.array([0.5, 3.0, 100.0])),
        has_noise=False,  # the beta draw has no explicit inverse CDF (families/power_spherical.py)
        bad_params=(
            ((_LOC, 0.0), "concentration"),
            ((_LOC, -1.0), "concentration"),
            ((_LOC, np.inf), "concentration"),
            ((_LOC, np.nan), "concentration"),
            ((2 * _LOC, 1.0), "loc"),
            ((np.full(3, np.nan), 1.0), "loc"),
            ((np.array([1.0]), 1.0), "loc"),
        ),
        extreme_strategy=st.tuples(_UNIT, st.floats(np.log(1e-3), np.log(1e4)).map(np.exp)),
        event_shape=(3,),
    )
]
