"""Evaluation metrics as pure functions over arrays, and the feature networks they use."""
