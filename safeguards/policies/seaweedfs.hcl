# The KMS provider of region {region}'s lake: wraps and unwraps data keys under that
# region's project, raw-PHI and model keys only (a dot ends a region's name, so
# "{region}." prefixes no other region's keys).
path "transit/encrypt/{region}.proj-*" { capabilities = ["update"] }
path "transit/decrypt/{region}.proj-*" { capabilities = ["update"] }
path "transit/keys/{region}.proj-*" { capabilities = ["read"] }
path "transit/encrypt/{region}.phi-*" { capabilities = ["update"] }
path "transit/decrypt/{region}.phi-*" { capabilities = ["update"] }
path "transit/keys/{region}.phi-*" { capabilities = ["read"] }
path "transit/encrypt/{region}.models-*" { capabilities = ["update"] }
path "transit/decrypt/{region}.models-*" { capabilities = ["update"] }
path "transit/keys/{region}.models-*" { capabilities = ["read"] }
