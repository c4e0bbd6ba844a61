"""The HIPAA technical safeguards every stage uses.

Settings (`settings`), verified OpenBao clients and identities (`openbao`), per-project keys
(`keys`), envelope encryption (`envelope`), generated credentials (`credentials`),
certificates (`pki`), the object store (`objectstore`), the audit log (`audit`), identifier
scrubbing and logging (`phi`, `logs`), and one error hierarchy (`errors`). Nothing here
imports a stage; stages import this.
"""
