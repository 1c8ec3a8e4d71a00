"""Offline evaluation: metrics, the popularity baseline, gates and the HTML report."""
