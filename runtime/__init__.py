"""What every process of the pipeline shares: the Kafka connection and its security, the
retry backoff, credential redaction, the health and metrics endpoint and the metric helpers
(``health``, ``metric_helpers``), the compacted topic used as a table by the control plane
(destinations, sink progress, account facts), and the topics' specs, drift and creation
(``topic_spec``, ``topic_drift``, ``topic_admin``)."""
