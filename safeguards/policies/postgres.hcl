# PostgreSQL's start-up step (beside the server): the superuser's password, to come in
# through the Unix socket, and the password whose verifier it sets on the `mlflow` role.
path "secret/data/services/postgres/admin" { capabilities = ["read"] }
path "secret/data/services/postgres/mlflow" { capabilities = ["read"] }
