import hypothesis.strategies as st
import numpy as np

from reparam import dirichlet
from tests.specs import FamilySpec

# Per-component concentrations, log-uniform over 1e-4 .. 1e4, in the spec's (3, 3) batch × event.
_EXTREMES = st.tuples(
    st.lists(st.floats(np.log(1e-4), np.log(1e4)), min_size=9, max_size=9).map(
        lambda logs: np.exp(np.array(logs)).reshape(3, 3)
    )
)

SPECS = [
    FamilySpec(
        module=dirichlet,
        params=(np.array([[0.5, 1.0, 2.0], [1.0, 1.0, 1.0], [3.0, 0.2, 7.0]]),),
        scipy_dist=None,  # multivariate: tests/test_implicit_families.py covers layers 3-4
        has_noise=False,  # no explicit inverse CDF: implicit gradients (families/dirichlet.py)
        batch_shape=(3,),
        event_shape=(3,),
        bad_params=(
            ((np.array([1.0, 0.0, 1.0]),), "concentration"),
            ((np.array([1.0, np.nan]),), "concentration"),
            ((np.array(1.0),), "concentration"),
        ),
        extreme_strategy=_EXTREMES,
    )
]
