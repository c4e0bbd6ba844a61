"""PostgreSQL, the backend store of MLflow on the stack, with TLS and SCRAM only."""
