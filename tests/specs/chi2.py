import numpy as np
from scipy import stats

from reparam import chi2
from tests.specs import FamilySpec

SPECS = [
    FamilySpec(
        module=chi2,
        # df 1 (density singular at 0), 2 (density ½ at 0), 7.
        params=(np.array([1.0, 2.0, 7.0]),),
        scipy_dist=lambda df: stats.chi2(df),
        has_noise=False,  # 2·Gamma(df/2) draw: implicit in df
        implicit=(0,),
        bad_params=(((0.0,), "df"), ((-1.0,), "df"), ((np.nan,), "df")),
        extreme_params=((1e-4, 1e4),),
        grad_params=(3.0,),
    )
]
