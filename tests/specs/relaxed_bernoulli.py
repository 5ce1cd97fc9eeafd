"""Spec for reparam.relaxed_bernoulli (binary Concrete), with an independent scipy reference."""

import numpy as np
from scipy import integrate, special, stats

from reparam import relaxed_bernoulli
from tests.specs import FamilySpec


class BinConcreteGen(stats.rv_continuous):
    """Binary Concrete(logits a, temperature lam) on (0, 1), Maddison et al. 2017, eq. (21):

    p(x) = lam α x^(−lam−1) (1 − x)^(−lam−1) / (α x^(−lam) + (1 − x)^(−lam))², α = e^a,
    written in log space with logaddexp (not the library's change-of-variables form).
    """

    def _argcheck(self, a, lam):
        return np.isfinite(a) & (lam > 0)

    def _logpdf(self, x, a, lam):
        log_x, log1m_x = np.log(x), np.log1p(-x)
        return (
            np.log(lam)
            + a
            - (lam + 1) * (log_x + log1m_x)
            - 2 * np.logaddexp(a - lam * log_x, -lam * log1m_x)
        )

    def _pdf(self, x, a, lam):
        return np.exp(self._logpdf(x, a, lam))

    def _cdf(self, x, a, lam):
        # z ≤ x  ⇔  L ≤ lam · logit(x) − a for the logistic noise L.
        return special.expit(lam * special.logit(x) - a)


bin_concrete = BinConcreteGen(a=0.0, b=1.0, name="bin_concrete", shapes="a, lam")


def expectation_over_logistic_noise(f, params) -> float:
    """E f(sigmoid((a + L)/lam)) by quadrature over L ~ Logistic(0, 1), independent of reparam."""
    a, lam = params

    def integrand(noise):
        density = np.exp(-abs(noise)) / (1 + np.exp(-abs(noise))) ** 2
        return f(special.expit((a + noise) / lam)) * density

    value, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=500)
    return value


SPECS = [
    FamilySpec(
        module=relaxed_bernoulli,
        params=(np.array([-2.0, 0.0, 1.5]), np.array([0.3, 1.0, 2.5])),
        scipy_dist=lambda logits, temperature: bin_concrete(logits, temperature),
        grad_params=(0.4, 0.7),
        expectation=expectation_over_logistic_noise,
        bad_params=(
            ((0.0, 0.0), "temperature"),
            ((0.0, -1.0), "temperature"),
            ((np.nan, 1.0), "logits"),
            ((np.inf, 1.0), "logits"),
        ),
        extreme_params=((-50.0, 50.0), (1e-3, 1e3)),
    )
]
