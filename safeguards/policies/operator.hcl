# Platform operator: manages keys, policies, identities and certificates.
# It cannot read or decrypt project data, nor alter the audit-log key.
path "sys/mounts" { capabilities = ["read"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/approle/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/keys/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/keys/audit-log" { capabilities = ["read"] }
path "transit/keys/audit-log/*" { capabilities = ["deny"] }
path "secret/data/services/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/services/*" { capabilities = ["read", "list"] }
path "pki/issue/server" { capabilities = ["update"] }
path "pki/issue/internal" { capabilities = ["update"] }
path "transit/hmac/audit-log" { capabilities = ["update"] }
path "transit/verify/audit-log" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["create", "read", "update"] }
# S3 identities of projects (workload and ingestion): generated here, read by the lake.
path "secret/data/projects/+/s3" { capabilities = ["create", "read", "update"] }
path "secret/data/ingest/+/s3" { capabilities = ["create", "read", "update"] }
# Each project's MLflow password: generated here, read by the project's workload.
path "secret/data/projects/+/mlflow" { capabilities = ["create", "read", "update"] }
# Serving: the endpoint's read-only MLflow password, and API key hashes (never the keys),
# created, listed and revoked here and read by the project's workload.
path "secret/data/projects/+/mlflow-serving" { capabilities = ["create", "read", "update"] }
path "secret/data/projects/+/api-keys/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/projects/+/api-keys/*" { capabilities = ["read", "list", "delete"] }
