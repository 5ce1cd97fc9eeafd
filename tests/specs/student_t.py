import numpy as np
from scipy import stats

from reparam import student_t
from tests.specs import FamilySpec

# df = 9: moments up to the 8th exist, so z and z² have finite-variance gradient estimators. The
# heavy-tailed case (df = 1.3, no variance) is in tests/test_implicit_families.py.
SPECS = [
    FamilySpec(
        module=student_t,
        params=(np.array([3.0, 5.0, 30.0]), np.array([-1.0, 0.0, 2.5]), np.array([0.5, 1.0, 3.0])),
        scipy_dist=lambda df, loc, scale: stats.t(df, loc, scale),
        has_noise=False,  # ε's law depends on df: implicit in df (families/student_t.py)
        # loc and scale only: the df gradient goes through the gamma draw, so per sample it is
        # not the t CDF's −(∂F/∂df)/p(z); tests/test_implicit_families.py checks it at the
        # gamma level.
        implicit=(1, 2),
        bad_params=(
            ((0.0, 0.0, 1.0), "df"),
            ((3.0, 0.0, -1.0), "scale"),
            ((3.0, np.nan, 1.0), "loc"),
        ),
        extreme_params=((1e-4, 1e4), (-1e6, 1e6), (1e-6, 1e6)),
        grad_params=(9.0, 0.3, 1.2),
    )
]
