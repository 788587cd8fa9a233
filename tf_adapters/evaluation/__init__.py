"""Metrics for evaluating base and adapted models."""
