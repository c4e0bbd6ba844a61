# MLflow's server at start: its own secrets, its database password and, on the stack,
# the platform's S3 keys for the artifacts it proxies. Nothing of any project.
path "secret/data/services/mlflow/admin" { capabilities = ["read"] }
path "secret/data/services/mlflow/flask-secret" { capabilities = ["read"] }
path "secret/data/services/postgres/mlflow" { capabilities = ["read"] }
path "secret/data/projects/platform/s3" { capabilities = ["read"] }
