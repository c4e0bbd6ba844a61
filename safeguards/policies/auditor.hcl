# Auditor: verifies the audit chain under every signer's key and reads every anchor; it
# can neither sign entries nor write anchors.
path "transit/verify/audit-*" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["read"] }
path "secret/metadata/audit/*" { capabilities = ["read", "list"] }
