"""The audit log's command-line edge: settings read once from the environment, and the
``auditlog`` command that wires producers, consumers, sinks and the local stack together."""
