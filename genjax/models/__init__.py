"""flax.linen modules only: encoders, decoders and the layers they share. No training logic lives here."""
