import numpy as np
from scipy import stats

from reparam import kumaraswamy
from tests.specs import FamilySpec


class _KumaraswamyGen(stats.rv_continuous):
    """Kumaraswamy(a, b) for scipy (which has none), written from the textbook density in numpy,
    independently of reparam.kumaraswamy; moments and entropy come from scipy's quadrature."""

    def _pdf(self, x, a, b):
        return a * b * x ** (a - 1) * (1 - x**a) ** (b - 1)

    def _cdf(self, x, a, b):
        return 1 - (1 - x**a) ** b


_kumaraswamy = _KumaraswamyGen(a=0.0, b=1.0, name="kumaraswamy")


SPECS = [
    FamilySpec(
        module=kumaraswamy,
        params=(np.array([0.7, 2.0, 5.0]), np.array([1.5, 1.0, 3.0])),
        scipy_dist=lambda concentration1, concentration0: _kumaraswamy(
            concentration1, concentration0
        ),
        grad_params=(2.0, 3.0),
        bad_params=(
            ((0.0, 1.0), "concentration1"),
            ((1.0, -2.0), "concentration0"),
            ((1.0, 0.0), "concentration0"),
            ((np.nan, 1.0), "concentration1"),
        ),
        extreme_params=((1e-8, 1e8), (1e-8, 1e8)),
    )
]
