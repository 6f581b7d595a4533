"""One module per ``auditlog`` command group; each exposes ``register(subparsers)``."""
