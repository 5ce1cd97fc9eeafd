import numpy as np
from scipy import stats

from reparam import half_normal
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=half_normal,
        params=(np.array([0.5, 1.0, 3.0]),),
        scipy_dist=lambda scale: stats.halfnorm(scale=scale),
        grad_params=(1.3,),
        bad_params=(((0.0,), "scale"), ((-1.0,), "scale"), ((np.nan,), "scale")),
        extreme_params=((1e-8, 1e8),),
    )
]
