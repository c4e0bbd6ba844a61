# SeaweedFS's KMS provider: wraps and unwraps data keys under project keys only.
path "transit/encrypt/proj-*" { capabilities = ["update"] }
path "transit/decrypt/proj-*" { capabilities = ["update"] }
path "transit/keys/proj-*" { capabilities = ["read"] }
path "transit/encrypt/phi-*" { capabilities = ["update"] }
path "transit/decrypt/phi-*" { capabilities = ["update"] }
path "transit/keys/phi-*" { capabilities = ["read"] }
path "transit/encrypt/models-*" { capabilities = ["update"] }
path "transit/decrypt/models-*" { capabilities = ["update"] }
path "transit/keys/models-*" { capabilities = ["read"] }
