# Platform operator: manages keys, policies, identities and certificates.
# It cannot read or decrypt project data, nor delete any audit key.
path "sys/mounts" { capabilities = ["read"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/approle/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/keys/*" { capabilities = ["create", "read", "update", "delete", "list"] }
# Audit keys: created with their identity (a create is an update in transit), never
# deleted, so whatever an identity ever signed can always be verified.
path "transit/keys/audit-*" { capabilities = ["create", "read", "update"] }
path "secret/data/services/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/services/*" { capabilities = ["read", "list"] }
path "pki/issue/server" { capabilities = ["update"] }
path "pki/issue/internal" { capabilities = ["update"] }
# Audit: signs with its own key only; anchors are created, never changed or deleted.
path "transit/hmac/audit-operator" { capabilities = ["update"] }
path "transit/verify/audit-*" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["create", "read"] }
path "secret/metadata/audit/*" { capabilities = ["list"] }
# Records of every project, generated and written here only; projects read their own.
path "secret/data/projects/+/s3" { capabilities = ["create", "read", "update"] }
path "secret/data/ingest/+/s3" { capabilities = ["create", "read", "update"] }
path "secret/data/serving/+/s3" { capabilities = ["create", "read", "update"] }
# Each project's contract: created once, never changed, read by the project's identities.
path "secret/data/projects/+/contract" { capabilities = ["create", "read"] }
# Each project's regions: written at create, read by the project's identities.
path "secret/data/projects/+/residency" { capabilities = ["create", "read", "update"] }
# Each project's MLflow password: generated here, read by the project's workload.
path "secret/data/projects/+/mlflow" { capabilities = ["create", "read", "update"] }
# Serving: the endpoint's read-only MLflow password, and API key hashes (never the keys),
# created, listed and revoked here and read by the project's endpoint.
path "secret/data/projects/+/mlflow-serving" { capabilities = ["create", "read", "update"] }
path "secret/data/projects/+/api-keys/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/projects/+/api-keys/*" { capabilities = ["read", "list", "delete"] }
# `projects delete`: a deleted project's records go, its contract stays (it is never
# changed) and so does its record under services/, marked deleted; its slot is freed.
path "secret/metadata/projects/+/s3" { capabilities = ["delete"] }
path "secret/metadata/projects/+/mlflow" { capabilities = ["delete"] }
path "secret/metadata/projects/+/mlflow-serving" { capabilities = ["delete"] }
path "secret/metadata/ingest/+/s3" { capabilities = ["delete"] }
path "secret/metadata/serving/+/s3" { capabilities = ["delete"] }
path "secret/metadata/services/slots/*" { capabilities = ["delete"] }
