"""OpenBao, the stack's key manager, secret store and certificate authority."""
