"""Bayesian logistic regression on scikit-learn's breast-cancer data (569 × 30, standardized).

    alpha ~ N(0, 5²),  beta_k ~ N(0, 1),  y_i ~ Bernoulli(sigmoid(alpha + x_i · beta))

The data ship with scikit-learn (no download). Features are standardized to mean 0, sd 1. The
unit prior on the coefficients keeps the posterior proper and close to Gaussian although the
classes are nearly separable.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

from experiments.models import Model, vector_quantities
from reparam.vi import bijectors


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray]:
    """(X [569, 30] standardized, y [569] in {0, 1})."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    x = np.asarray(bunch.data, np.float64)
    x = (x - x.mean(0)) / x.std(0)
    return x, np.asarray(bunch.target, np.float64)


def _log_joint(params):
    x, y = data()
    alpha, beta = params["alpha"], params["beta"]
    logits = alpha + x.astype(beta.dtype) @ beta
    # log sigmoid(l) for y = 1, log sigmoid(−l) for y = 0, without overflow.
    log_lik = jnp.sum(y * jax.nn.log_sigmoid(logits) + (1 - y) * jax.nn.log_sigmoid(-logits))
    return stats.norm.logpdf(alpha, 0.0, 5.0) + jnp.sum(stats.norm.logpdf(beta)) + log_lik


def _numpyro_model():
    import numpyro
    import numpyro.distributions as dist

    x, y = data()
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 5.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=alpha + x @ beta).to_event(1), obs=y)


def model() -> Model:
    x, _ = data()
    return Model(
        name="logistic_regression",
        title="Logistic regression, breast cancer (569 × 30)",
        log_joint=_log_joint,
        init_params={"alpha": np.array(0.0), "beta": np.zeros(x.shape[1])},
        constraints={"alpha": bijectors.real, "beta": bijectors.real},
        numpyro_model=_numpyro_model,
        quantities=lambda draws: vector_quantities(draws, ("alpha", "beta")),
        reference="logistic_regression",
        marginals=("alpha", "beta[0]", "beta[7]", "beta[21]"),
    )
