"""A two-component 1-D Gaussian mixture with a Dirichlet prior on the weights.

    weights ~ Dirichlet(2, 2),  locs ~ N(0, 5²) each (ordered: locs[0] < locs[1]),
    scales ~ HalfNormal(2) each,  y_i ~ Σ_k weights_k N(locs_k, scales_k²)

The ordering identifies the components (no label switching, so NUTS chains agree and the
posterior is unimodal). Data: 300 points from 0.35 N(−2, 0.7²) + 0.65 N(1.5, 1.2²), seed 0.

In `reparam.vi` the weights can be a `DirichletFactor` (their own Dirichlet q, fitted through
the implicit gradients of `reparam.dirichlet`) or go through the stick-breaking bijection into
the Gaussian block, as NumPyro's autoguides do.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from jax.scipy import stats
from jax.scipy.special import logsumexp

from experiments.models import Model, vector_quantities
from reparam.vi import bijectors

TRUE_WEIGHTS = (0.35, 0.65)
TRUE_LOCS = (-2.0, 1.5)
TRUE_SCALES = (0.7, 1.2)
N = 300
PRIOR_CONCENTRATION = np.array([2.0, 2.0])


@functools.cache
def data() -> np.ndarray:
    """The 300 observations (fixed seed)."""
    rng = np.random.default_rng(0)
    component = rng.random(N) < TRUE_WEIGHTS[1]
    locs, scales = np.asarray(TRUE_LOCS), np.asarray(TRUE_SCALES)
    return locs[component.astype(int)] + scales[component.astype(int)] * rng.standard_normal(N)


def _log_joint(params):
    y = data()
    weights, locs, scales = params["weights"], params["locs"], params["scales"]
    log_prior = (
        stats.dirichlet.logpdf(weights, PRIOR_CONCENTRATION)
        + jnp.sum(stats.norm.logpdf(locs, 0.0, 5.0))
        + jnp.sum(jnp.log(2.0) + stats.norm.logpdf(scales, 0.0, 2.0))
    )
    per_component = jnp.log(weights) + stats.norm.logpdf(y[:, None], locs, scales)
    return log_prior + jnp.sum(logsumexp(per_component, axis=-1))


def _numpyro_model():
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    y = data()
    weights = numpyro.sample("weights", dist.Dirichlet(PRIOR_CONCENTRATION))
    locs = numpyro.sample("locs", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    numpyro.factor("locs_prior", dist.Normal(0.0, 5.0).log_prob(locs).sum())
    scales = numpyro.sample("scales", dist.HalfNormal(2.0).expand([2]).to_event(1))
    mixture = dist.MixtureSameFamily(dist.Categorical(probs=weights), dist.Normal(locs, scales))
    with numpyro.plate("data", len(y)):
        numpyro.sample("y", mixture, obs=y)


def model() -> Model:
    return Model(
        name="gaussian_mixture",
        title="Two-component Gaussian mixture (n = 300)",
        log_joint=_log_joint,
        init_params={
            "weights": np.array([0.5, 0.5]),
            "locs": np.array([-1.0, 1.0]),
            "scales": np.array([1.0, 1.0]),
        },
        constraints={
            "weights": bijectors.simplex,
            "locs": bijectors.ordered,
            "scales": bijectors.positive,
        },
        numpyro_model=_numpyro_model,
        quantities=lambda draws: vector_quantities(draws, ("weights", "locs", "scales")),
        reference="gaussian_mixture",
        marginals=("weights[0]", "locs[0]", "locs[1]", "scales[0]", "scales[1]"),
    )
