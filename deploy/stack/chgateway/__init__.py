"""A development gateway that serves the embedded ClickHouse engine (chdb) over the part of
the ClickHouse HTTP protocol that clickhouse-connect and curl use.

Development tooling, not a ClickHouse server: no authentication, no TLS, no clustering, no
progress headers, responses are buffered. It exists so that the product's one path to
ClickHouse (clickhouse-connect over HTTP) can be exercised against the real engine on
machines without a ClickHouse server.

Modules, one concept each:

- :mod:`.sql`: lexical scanning of SQL text (insert heads, FORMAT clauses, quoting);
- :mod:`.protocol`: URL parameters, errors and response headers of the HTTP protocol;
- :mod:`.bodies`: request bodies (Content-Length, chunked, Content-Encoding, forms);
- :mod:`.engine`: the chdb engine, one fresh engine connection per request;
- :mod:`.sessions`: ``session_id`` state (``SET``/``USE`` replayed per request);
- :mod:`.service`: one HTTP request to one engine call and its response;
- :mod:`.server`: the threaded HTTP server, signals and the command line.
"""
