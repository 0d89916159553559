"""Drift jobs over traffic windows and the safe retrain trigger (issue 5: not built yet)."""
