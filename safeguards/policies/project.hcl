# Workload identity of project {project} (training, monitoring): its project key, read
# access to its records (the operator writes them), and audit appends. Never the raw PHI
# zone: that key is phi-{project}.
path "transit/datakey/plaintext/proj-{project}" { capabilities = ["update"] }
path "transit/encrypt/proj-{project}" { capabilities = ["update"] }
path "transit/decrypt/proj-{project}" { capabilities = ["update"] }
path "transit/keys/proj-{project}" { capabilities = ["read"] }
# Its MLflow artifacts (runs' files, models) are sealed under a key of their own.
path "transit/datakey/plaintext/models-{project}" { capabilities = ["update"] }
path "transit/decrypt/models-{project}" { capabilities = ["update"] }
path "secret/data/projects/{project}/*" { capabilities = ["read"] }
# Audit: signs with its own key only; anchors are created, never changed or deleted.
path "transit/hmac/audit-project-{project}" { capabilities = ["update"] }
path "transit/verify/audit-*" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["create", "read"] }
path "secret/metadata/audit/*" { capabilities = ["list"] }
