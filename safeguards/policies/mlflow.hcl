# MLflow's server at start: its own secrets and its database password. No storage key:
# artifacts go from each project's identities to the project's own zone. Nothing of any
# project.
path "secret/data/services/mlflow/admin" { capabilities = ["read"] }
path "secret/data/services/mlflow/flask-secret" { capabilities = ["read"] }
path "secret/data/services/postgres/mlflow" { capabilities = ["read"] }
