"""What every long-running process of the pipeline shares (the writer, the sink workers)."""
