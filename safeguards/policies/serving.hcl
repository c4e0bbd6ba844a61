# Serving endpoint of project {project}, which may receive PHI: it reads the champion as
# the read-only MLflow user (its files opened under the models key), checks API key
# digests and seals captured features. Nothing else: no training password, no dataset,
# no audit signing, no record it could rewrite.
path "secret/data/projects/{project}/mlflow-serving" { capabilities = ["read"] }
# Its contract: the request it accepts is the contract's features.
path "secret/data/projects/{project}/contract" { capabilities = ["read"] }
path "secret/data/projects/{project}/residency" { capabilities = ["read"] }
path "secret/data/projects/{project}/api-keys/*" { capabilities = ["read"] }
path "secret/data/serving/{project}/*" { capabilities = ["read"] }
path "transit/datakey/plaintext/{region}.proj-{project}" { capabilities = ["update"] }
path "transit/decrypt/{region}.models-{project}" { capabilities = ["update"] }
