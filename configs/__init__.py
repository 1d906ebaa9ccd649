"""Named experiments: one file per experiment, each with `get_config(arg)`; variants import a base (wgan.py and
wgan_gp.py build on gan.py) and override a few lines."""
