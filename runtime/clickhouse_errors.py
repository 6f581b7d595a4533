"""What a ClickHouse error means for whoever inserts: the data is wrong (retrying the same
bytes cannot help: isolate the bad records), or ClickHouse is unreachable, overloaded or
timing out (retry later). Shared by the writer (:mod:`consumers.inserter`,
:mod:`consumers.insert_retry`) and the integrity appender (:mod:`integrity.retrying`)."""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

# ClickHouse error codes that mean "this data is wrong", not "try again later":
# CANNOT_PARSE_* (6, 26, 27, 38, 41, 69, 72, 376), TYPE_MISMATCH (53), TOO_LARGE_STRING_SIZE
# (131), number of tuple leaves (117), INCORRECT_DATA (117), Avro errors (1001, as
# std::exception), VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE (321), CANNOT_READ_ALL_DATA (33).
DATA_ERROR_CODES = frozenset({6, 26, 27, 33, 38, 41, 53, 69, 72, 117, 131, 321, 376, 1001})


def is_data_error(error: Exception) -> bool:
    """True if ClickHouse refused the data itself (retrying the same bytes cannot help)."""
    return isinstance(error, DatabaseError) and getattr(error, "code", None) in DATA_ERROR_CODES


def is_transient(error: BaseException) -> bool:
    """Failures worth retrying: ClickHouse unreachable, overloaded or timing out."""
    if isinstance(error, OperationalError | OSError):
        return True
    return isinstance(error, DatabaseError) and not is_data_error(error)
