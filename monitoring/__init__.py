"""Drift jobs over traffic windows and the safe retrain trigger (cooldown, idempotency, one retrain at a
time, a circuit breaker)."""
