"""The audit event contract: versioned Avro schemas and the activity catalog."""
