"""Prometheus, the stack's metrics store and alert evaluator, with TLS and basic auth."""
