"""Senders deliver one encoded batch to one destination kind (S3, webhook, HTTP log
services); ``base`` holds the contract every kind implements."""
