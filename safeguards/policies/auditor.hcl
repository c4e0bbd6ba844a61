# Auditor: verifies the audit chain; can neither write entries nor move its anchor.
path "transit/verify/audit-log" { capabilities = ["update"] }
path "secret/data/audit/*" { capabilities = ["read"] }
