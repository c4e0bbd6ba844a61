# Ingestion identity of project {project}: the only one that reaches raw PHI. It reads and
# writes the raw zone (its own key), writes de-identified data (the project key) and
# computes pseudonyms. Its records are the operator's to write: it reads them only.
# Each key once per region of the project.
path "transit/datakey/plaintext/{region}.phi-{project}" { capabilities = ["update"] }
path "transit/decrypt/{region}.phi-{project}" { capabilities = ["update"] }
path "transit/datakey/plaintext/{region}.proj-{project}" { capabilities = ["update"] }
path "transit/decrypt/{region}.proj-{project}" { capabilities = ["update"] }
path "transit/hmac/{region}.pseudonym-{project}" { capabilities = ["update"] }
path "secret/data/ingest/{project}/*" { capabilities = ["read"] }
# Its contract, which every table it admits and de-identifies is checked against.
path "secret/data/projects/{project}/contract" { capabilities = ["read"] }
path "secret/data/projects/{project}/residency" { capabilities = ["read"] }
# Audit: signs with its own key only; anchors are created, never changed or deleted.
path "transit/hmac/audit-ingest-{project}" { capabilities = ["update"] }
path "transit/verify/audit-*" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["create", "read"] }
path "secret/metadata/audit/*" { capabilities = ["list"] }
