# Workload identity of project {project} (training, monitoring): its project key in each
# of its regions, read access to its records (the operator writes them), and audit
# appends. Never the raw PHI zone: that key is <region>.phi-{project}.
path "transit/datakey/plaintext/{region}.proj-{project}" { capabilities = ["update"] }
path "transit/encrypt/{region}.proj-{project}" { capabilities = ["update"] }
path "transit/decrypt/{region}.proj-{project}" { capabilities = ["update"] }
path "transit/keys/{region}.proj-{project}" { capabilities = ["read"] }
# Its MLflow artifacts (runs' files, models) are sealed under a key of their own.
path "transit/datakey/plaintext/{region}.models-{project}" { capabilities = ["update"] }
path "transit/decrypt/{region}.models-{project}" { capabilities = ["update"] }
path "secret/data/projects/{project}/*" { capabilities = ["read"] }
# Audit: signs with its own key only; anchors are created, never changed or deleted.
path "transit/hmac/audit-project-{project}" { capabilities = ["update"] }
path "transit/verify/audit-*" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["create", "read"] }
path "secret/metadata/audit/*" { capabilities = ["list"] }
