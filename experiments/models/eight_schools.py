"""Eight schools (Rubin 1981; Gelman et al., BDA §5.5), centered and non-centered.

    mu ~ N(0, 5²),  tau ~ HalfCauchy(5),  theta_j ~ N(mu, tau²),  y_j ~ N(theta_j, sigma_j²)

The centered form samples theta directly: its posterior has a funnel in (log tau, theta) that
mean-field and even full-rank Gaussians in (mu, log tau, theta) fit badly (tau collapses). The
non-centered form samples theta_tilde ~ N(0, 1) and sets theta = mu + tau · theta_tilde, which
removes the funnel. Both have the same posterior over (mu, tau, theta); the reference is NUTS on
the non-centered form.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

from experiments.models import Model, vector_quantities
from reparam.vi import bijectors

Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
J = len(Y)
QUANTITIES = ("mu", "tau", "theta")


def _half_cauchy_logpdf(x, scale):
    return jnp.log(2.0) + stats.cauchy.logpdf(x, 0.0, scale)


def _centered_log_joint(params):
    mu, tau, theta = params["mu"], params["tau"], params["theta"]
    return (
        stats.norm.logpdf(mu, 0.0, 5.0)
        + _half_cauchy_logpdf(tau, 5.0)
        + jnp.sum(stats.norm.logpdf(theta, mu, tau))
        + jnp.sum(stats.norm.logpdf(Y, theta, SIGMA))
    )


def _noncentered_log_joint(params):
    mu, tau, theta_tilde = params["mu"], params["tau"], params["theta_tilde"]
    theta = mu + tau * theta_tilde
    return (
        stats.norm.logpdf(mu, 0.0, 5.0)
        + _half_cauchy_logpdf(tau, 5.0)
        + jnp.sum(stats.norm.logpdf(theta_tilde, 0.0, 1.0))
        + jnp.sum(stats.norm.logpdf(Y, theta, SIGMA))
    )


def _centered_numpyro():
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta = numpyro.sample("theta", dist.Normal(mu, tau).expand([J]).to_event(1))
    numpyro.sample("y", dist.Normal(theta, SIGMA).to_event(1), obs=Y)


def _noncentered_numpyro():
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0).expand([J]).to_event(1))
    numpyro.sample("y", dist.Normal(mu + tau * theta_tilde, SIGMA).to_event(1), obs=Y)


def _quantities(draws):
    draws = dict(draws)
    if "theta" not in draws:
        mu, tau = np.asarray(draws["mu"]), np.asarray(draws["tau"])
        draws["theta"] = mu[:, None] + tau[:, None] * np.asarray(draws["theta_tilde"])
    return vector_quantities(draws, QUANTITIES)


def centered() -> Model:
    return Model(
        name="eight_schools_centered",
        title="Eight schools, centered",
        log_joint=_centered_log_joint,
        init_params={"mu": np.array(0.0), "tau": np.array(1.0), "theta": np.zeros(J)},
        constraints={"mu": bijectors.real, "tau": bijectors.positive, "theta": bijectors.real},
        numpyro_model=_centered_numpyro,
        quantities=_quantities,
        reference="eight_schools_noncentered",
        marginals=("mu", "tau", "theta[0]"),
    )


def noncentered() -> Model:
    return Model(
        name="eight_schools_noncentered",
        title="Eight schools, non-centered",
        log_joint=_noncentered_log_joint,
        init_params={"mu": np.array(0.0), "tau": np.array(1.0), "theta_tilde": np.zeros(J)},
        constraints={
            "mu": bijectors.real,
            "tau": bijectors.positive,
            "theta_tilde": bijectors.real,
        },
        numpyro_model=_noncentered_numpyro,
        quantities=_quantities,
        reference="eight_schools_noncentered",
        marginals=("mu", "tau", "theta[0]"),
    )
