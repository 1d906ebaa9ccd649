"""genjax: JAX/Flax research code for neural image generation (GANs, VAEs, autoencoders).

The package is a library; entry points live in experiments/ and named configurations in configs/.
"""
