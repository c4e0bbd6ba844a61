"""SeaweedFS, the stack's S3 data lake, with SSE-KMS keys in OpenBao transit."""
