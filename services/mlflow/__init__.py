"""MLflow, the stack's experiment tracking and model registry, with auth and TLS."""
