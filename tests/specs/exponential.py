import numpy as np
from scipy import stats

from reparam import exponential
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=exponential,
        params=(np.array([0.5, 1.0, 4.0]),),
        scipy_dist=lambda rate: stats.expon(scale=1.0 / rate),
        grad_params=(1.3,),
        bad_params=(((0.0,), "rate"), ((-1.0,), "rate"), ((np.nan,), "rate")),
        extreme_params=((1e-8, 1e8),),
    )
]
