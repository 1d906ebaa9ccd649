"""Input data: TFDS catalogue access, the bundled offline dataset and the grain pipeline."""
