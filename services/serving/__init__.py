"""DEPLOY: the BentoML endpoint that serves a project's champion model over HTTPS."""
