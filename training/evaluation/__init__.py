"""Scoring a trained model: evaluation through the inference pipeline, and the metrics."""
