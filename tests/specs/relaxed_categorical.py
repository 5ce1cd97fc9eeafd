"""Spec for reparam.relaxed_categorical (Gumbel-softmax / Concrete).

No scipy distribution and no scalar-parameter MC layer: tests/test_relaxed.py compares the
pathwise gradient with the score-function estimator, checks the density (it integrates to 1 for
K = 2 and equals the binary Concrete there), KS of log-ratios (logistic), straight-through.
"""

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp

from reparam import relaxed_categorical
from tests.specs import FamilySpec

LOGITS = np.array([[0.0, 1.0, -1.0, 0.5], [2.0, 0.0, 0.5, -2.0], [-1.5, -1.0, 3.0, 0.0]])
TEMPERATURE = np.array([0.5, 1.0, 2.0])

SPECS = [
    FamilySpec(
        module=relaxed_categorical,
        params=(LOGITS, TEMPERATURE),
        scipy_dist=None,
        grad_params=None,
        bad_params=(
            ((LOGITS, np.array([0.5, 0.0, 1.0])), "temperature"),
            ((LOGITS, -1.0), "temperature"),
            ((np.array([0.0, np.nan, 1.0]), 1.0), "logits"),
            ((np.array([0.0, -np.inf, 1.0]), 1.0), "logits"),
        ),
        extreme_strategy=st.tuples(
            hnp.arrays(np.float64, LOGITS.shape, elements=st.floats(-50.0, 50.0)),
            hnp.arrays(
                np.float64, TEMPERATURE.shape, elements=st.floats(np.log(1e-3), np.log(1e3))
            ).map(np.exp),
        ),
        batch_shape=(3,),
        event_shape=(4,),
    )
]
