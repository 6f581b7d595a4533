"""Tools the project builds for itself (from the Go module proxy) and caches in ``.cache/``:
development and test tooling, never shipped with the product."""
