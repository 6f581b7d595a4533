"""Everything about running the product: the local development stack and its launchers,
compose files for real servers, and (later) cluster DDL, manifests and dashboards."""
