"""Streaming sink workers that replicate each tenant's events to its destinations."""
