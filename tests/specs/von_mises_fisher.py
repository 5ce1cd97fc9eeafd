import hypothesis.strategies as st
import numpy as np

from reparam import von_mises_fisher
from tests.specs import FamilySpec


def _unit(polar: float, azimuth: float) -> np.ndarray:
    return np.array(
        [np.cos(polar), np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth)]
    )


# Three directions on S² (any, including ±e₁ where the reflection switches sign convention) and
# concentrations log-uniform over 1e-4 .. 1e5, in the spec's (3,) batch × (3,) event.
_EXTREMES = st.tuples(
    st.lists(st.tuples(st.floats(0, np.pi), st.floats(-np.pi, np.pi)), min_size=3, max_size=3).map(
        lambda angles: np.stack([_unit(*a) for a in angles])
    ),
    st.lists(st.floats(np.log(1e-4), np.log(1e5)), min_size=3, max_size=3).map(np.exp),
)
_E1 = np.array([1.0, 0.0, 0.0])

SPECS = [
    FamilySpec(
        module=von_mises_fisher,
        params=(
            np.stack([_E1, -_E1[[1, 2, 0]], _unit(2.0, -0.7)]),
            np.array([0.5, 30.0, 1e3]),
        ),
        scipy_dist=None,  # on the sphere: tests/test_von_mises_fisher.py covers layers 3-4
        has_noise=False,  # Wood's rejection sampler: implicit gradient in κ (the module's doc)
        batch_shape=(3,),
        event_shape=(3,),
        bad_params=(
            ((np.array([1.0, 1.0, 0.0]), 1.0), "loc"),  # first: a value check, also under jit
            ((np.zeros(3), 1.0), "loc"),
            ((np.array([np.nan, 0.0, 0.0]), 1.0), "loc"),
            ((np.array([1.0]), 1.0), "loc"),
            ((_E1, 0.0), "concentration"),
            ((_E1, -1.0), "concentration"),
            ((_E1, np.inf), "concentration"),
            ((_E1, np.nan), "concentration"),
        ),
        extreme_strategy=_EXTREMES,
    )
]
