"""Spec for reparam.half_student_t, with a scipy rv_continuous folded from scipy's t."""

import numpy as np
from scipy import stats

from reparam import half_student_t
from tests.specs import FamilySpec


class HalfStudentTGen(stats.rv_continuous):
    """|T| for T ~ t(df): density 2·t.pdf(x, df) and CDF 2·t.cdf(x, df) − 1 on x ≥ 0, entropy
    the t's minus log 2 (scipy's own t, not reparam's formulas); scipy integrates the moments."""

    def _argcheck(self, df):
        return df > 0

    def _pdf(self, x, df):
        return 2.0 * stats.t.pdf(x, df)

    def _logpdf(self, x, df):
        return np.log(2.0) + stats.t.logpdf(x, df)

    def _cdf(self, x, df):
        # 1 − 2·sf(x): the two tails of |T| are one, so no cancellation near 1.
        return 1.0 - 2.0 * stats.t.sf(x, df)

    def _entropy(self, df):
        return stats.t.entropy(df) - np.log(2.0)


half_t = HalfStudentTGen(a=0.0, name="half_student_t", shapes="df")

SPECS = [
    FamilySpec(
        module=half_student_t,
        params=(np.array([3.0, 5.0, 30.0]), np.array([0.5, 1.0, 3.0])),
        scipy_dist=lambda df, scale: half_t(df, scale=scale),
        has_noise=False,  # |student_t draw|: implicit in df (families/half_student_t.py)
        # No per-sample CDF test: as for student_t, the df gradient goes through the gamma draw,
        # which is not −(∂F/∂df)/p(z) of the t CDF per sample; the Monte-Carlo layer covers it.
        implicit=(),
        bad_params=(
            ((0.0, 1.0), "df"),
            ((3.0, -1.0), "scale"),
            ((np.nan, 1.0), "df"),
        ),
        extreme_params=((1e-4, 1e4), (1e-6, 1e6)),
        # df = 9: moments up to the 8th exist (as in the student_t spec).
        grad_params=(9.0, 1.2),
    )
]
