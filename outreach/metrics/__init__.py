"""Metrics: outcomes, the expansion report, prompt experiments and SDR feedback."""
