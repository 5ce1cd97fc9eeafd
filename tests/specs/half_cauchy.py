import numpy as np
from scipy import stats

from reparam import half_cauchy
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=half_cauchy,
        params=(np.array([0.5, 1.0, 3.0]),),
        scipy_dist=lambda scale: stats.halfcauchy(scale=scale),
        grad_params=(1.3,),
        # z and z² have no expectation under a half-Cauchy; bounded f do.
        functions=("gauss", "cos"),
        bad_params=(((0.0,), "scale"), ((-1.0,), "scale"), ((np.nan,), "scale")),
        extreme_params=((1e-8, 1e8),),
    )
]
