"""The local development stack: Apache Kafka run with ``java``, the embedded ClickHouse
engine behind an HTTP gateway, and an S3-compatible server. Development tooling only."""
