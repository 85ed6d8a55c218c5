"""Hearth's application layer: the CLI, the shared chat service, and the Qt window."""
