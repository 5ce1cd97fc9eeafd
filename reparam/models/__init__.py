"""Model-level objectives built from families and estimators: the Gaussian VAE/IWAE bounds
(`objectives`), the categorical- and Bernoulli-latent VAEs (`discrete_vae`, `bernoulli_vae`) and
Bayesian-network losses and calibration (`bnn`). The Flax modules they score live in `reparam.nn`.

Submodules are imported by name (`from reparam.models import objectives`); `bnn` needs flax.
"""

# Nothing to star-import: the submodules are imported by name (`bnn` would load flax).
__all__: list[str] = []
