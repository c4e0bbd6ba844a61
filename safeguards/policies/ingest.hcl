# Ingestion identity of project {project}: the only one that reaches raw PHI. It reads and
# writes the raw zone (its own key), writes de-identified data (the project key) and
# computes pseudonyms.
path "transit/datakey/plaintext/phi-{project}" { capabilities = ["update"] }
path "transit/decrypt/phi-{project}" { capabilities = ["update"] }
path "transit/datakey/plaintext/proj-{project}" { capabilities = ["update"] }
path "transit/decrypt/proj-{project}" { capabilities = ["update"] }
path "transit/hmac/pseudonym-{project}" { capabilities = ["update"] }
path "secret/data/ingest/{project}/*" { capabilities = ["read"] }
path "transit/hmac/audit-log" { capabilities = ["update"] }
path "transit/verify/audit-log" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["create", "read", "update"] }
