"""Probabilistic graphical models for the VI experiment, each written twice: as a JAX log-joint
for `reparam.vi` and as a NumPyro model (NUTS reference and NumPyro SVI peer) with the same
site names and the same unnormalized density (tests/test_vi_experiment.py checks that).

Every model ships with the project (no downloads): eight schools (inline data), Bayesian
logistic regression on scikit-learn's breast-cancer data, and a two-component 1-D Gaussian
mixture on data generated with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

PyTree = Any


@dataclass(frozen=True)
class Model:
    """One model.

    Attributes:
      name: a short identifier, used in file names.
      title: for tables and plots.
      log_joint: params pytree (constrained) -> scalar log p(params, data), in JAX.
      init_params: a starting point inside every constraint's support.
      constraints: the `reparam.vi` constraint tree (bijectors / DirichletFactor).
      numpyro_model: a NumPyro model function of no arguments with the same sites and density.
      quantities: draws (a dict of arrays with a leading draw axis, from VI or MCMC) -> a dict
        name -> (n,) array of the reported scalar quantities, in a fixed order.
      reference: the name of the model whose NUTS run is the reference (the non-centered
        eight schools serves both parameterizations: same posterior, no funnel).
      marginals: quantity names to plot against NUTS histograms.
    """

    name: str
    title: str
    log_joint: Callable[[PyTree], Any]
    init_params: dict[str, np.ndarray]
    constraints: dict[str, Any]
    numpyro_model: Callable[[], None]
    quantities: Callable[[dict[str, Any]], dict[str, np.ndarray]]
    reference: str
    marginals: tuple[str, ...]


def vector_quantities(draws: dict[str, Any], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Split each (n, k) site of `draws` into k scalar quantities "site[i]" (scalars kept)."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        value = np.asarray(draws[name])
        if value.ndim == 1:
            out[name] = value
        else:
            for i in range(value.shape[1]):
                out[f"{name}[{i}]"] = value[:, i]
    return out


def all_models() -> dict[str, Model]:
    from experiments.models import eight_schools, gaussian_mixture, logistic_regression

    models = [
        eight_schools.centered(),
        eight_schools.noncentered(),
        logistic_regression.model(),
        gaussian_mixture.model(),
    ]
    return {m.name: m for m in models}
