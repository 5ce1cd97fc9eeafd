"""Placeholder for `make run` until the VAE experiment lands: fit a Gaussian by pathwise gradients."""
