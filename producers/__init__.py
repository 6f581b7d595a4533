"""The producer SDK: validate, encode and publish audit events to Kafka."""
