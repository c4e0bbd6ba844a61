"""Servers of the stack: their configuration, native launchers and the supervisor."""
