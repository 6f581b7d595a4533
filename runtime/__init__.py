"""What every process of the pipeline shares: the Kafka connection and its security, the
retry backoff, credential redaction, and the compacted topic used as a table by the control
plane (destinations, sink progress, account facts)."""
