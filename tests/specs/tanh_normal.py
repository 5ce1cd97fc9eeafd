"""Spec for reparam.tanh_normal, with a scipy rv_continuous written from the change of variables."""

import numpy as np
from scipy import stats

from reparam import tanh_normal
from tests.specs import FamilySpec


class TanhNormalGen(stats.rv_continuous):
    """z = tanh(u), u ~ N(mu, sigma²): p(z) = N(atanh z; mu, sigma²) / (1 − z²) on (−1, 1).

    Shape parameters are named mu, sigma because rv_continuous reserves loc and scale.
    """

    def _argcheck(self, mu, sigma):
        return np.isfinite(mu) & (sigma > 0)

    def _logpdf(self, x, mu, sigma):
        # log(1 − x²) as log1p(−x) + log1p(x): 1 − x is exact near 1, x² is not.
        return stats.norm.logpdf(np.arctanh(x), mu, sigma) - np.log1p(-x) - np.log1p(x)

    def _pdf(self, x, mu, sigma):
        return np.exp(self._logpdf(x, mu, sigma))

    def _cdf(self, x, mu, sigma):
        return stats.norm.cdf((np.arctanh(x) - mu) / sigma)


tanh_norm = TanhNormalGen(a=-1.0, b=1.0, name="tanh_normal", shapes="mu, sigma")

SPECS = [
    FamilySpec(
        module=tanh_normal,
        params=(np.array([-1.0, 0.0, 1.5]), np.array([0.5, 1.0, 2.0])),
        scipy_dist=lambda loc, scale: tanh_norm(loc, scale),
        grad_params=(0.3, 0.8),
        bad_params=(((0.0, 0.0), "scale"), ((0.0, -1.0), "scale"), ((np.nan, 1.0), "loc")),
        extreme_params=((-1e6, 1e6), (1e-8, 1e8)),
    )
]
