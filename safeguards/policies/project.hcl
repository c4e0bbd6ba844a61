# Workload identity of project {project} (training, serving): its project key and
# secrets, and audit appends. Never the raw PHI zone: that key is phi-{project}.
path "transit/datakey/plaintext/proj-{project}" { capabilities = ["update"] }
path "transit/encrypt/proj-{project}" { capabilities = ["update"] }
path "transit/decrypt/proj-{project}" { capabilities = ["update"] }
path "transit/keys/proj-{project}" { capabilities = ["read"] }
path "secret/data/projects/{project}/*" { capabilities = ["create", "read", "update"] }
path "transit/hmac/audit-log" { capabilities = ["update"] }
path "transit/verify/audit-log" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["create", "read", "update"] }
