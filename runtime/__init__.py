"""What every process of the pipeline shares: the Kafka connection and its security, the
retry backoff, credential redaction."""
