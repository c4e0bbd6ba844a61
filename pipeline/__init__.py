"""The lifecycle glue: the `hipaa-mlops` command line and the demo."""
