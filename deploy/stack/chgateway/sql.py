"""Lexical scanning of ClickHouse SQL text: just enough to route a request.

Nothing here parses SQL: the engine does. These functions find the ``INSERT ... FORMAT X``
head that precedes insert data, the output ``FORMAT`` of a query, the statement's first
keyword, and a second statement after ``;``, while skipping string literals, quoted
identifiers and comments. All functions are pure.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

_TOKEN_RE = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>--[^\n]*|\#[ !][^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^'\\]|\\.|'')*')
    | (?P<quoted>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
    | (?P<open>['"`]|/\*)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>[0-9][0-9A-Za-z_.]*)
    | (?P<punct>.)
    """,
    re.DOTALL | re.VERBOSE,
)

# Statements whose response is a result set (and so carries X-ClickHouse-Format).
_RESULT_KEYWORDS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "CHECK", "FROM", "("}
)


class Pending(enum.Enum):
    """More request bytes are needed before :func:`split_insert` can decide."""

    MORE = "more"


NEED_MORE = Pending.MORE


@dataclass(frozen=True)
class Token:
    """A significant token: ``kind`` is a group name of the scanner (word, string, punct...)."""

    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class InsertHead:
    """An ``INSERT ... FORMAT X`` statement head followed by data in the same byte stream.

    ``statement`` is the head without its FORMAT clause (what chdb's ``send_insert`` takes),
    ``fmt`` the input format name, ``data_offset`` where the data starts in the scanned
    buffer: after the format name, blanks, and at most one line break, as ClickHouse does.
    """

    statement: str
    fmt: str
    data_offset: int


class _Incomplete(Exception):
    """A token reaches the end of a buffer that is not the end of the stream."""


def _significant(text: str, *, at_eof: bool = True) -> Iterator[Token]:
    """Tokens of ``text`` without blanks and comments.

    Unless ``at_eof``, raises :class:`_Incomplete` on a token that touches the end of
    ``text`` (it may continue in bytes not read yet) or an unterminated quote or comment.
    """
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup or "punct"
        if not at_eof and (match.end() == len(text) or kind == "open"):
            raise _Incomplete
        if kind in ("ws", "comment"):
            continue
        yield Token(kind, match.group(), match.start(), match.end())


def _data_start(text: str, pos: int, *, at_eof: bool) -> int | Pending:
    """Where insert data starts after a format name ending at ``pos``."""
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if pos < len(text) and text[pos] == "\r":
        pos += 1
    if pos == len(text) and not at_eof:
        return NEED_MORE
    if pos < len(text) and text[pos] == "\n":
        pos += 1
    return pos


def _format_clause(tokens: Iterator[Token]) -> tuple[Token, Token] | Pending | None:
    """The FORMAT keyword and format name of an INSERT; None if the statement is not an
    INSERT with FORMAT; NEED_MORE if the tokens ran out first."""
    first = next(tokens, None)
    if first is None:
        return NEED_MORE
    if first.text.upper() != "INSERT":
        return None
    depth = 0
    for token in tokens:
        if token.kind == "punct":
            depth += {"(": 1, ")": -1}.get(token.text, 0)
        elif depth == 0 and token.kind == "word":
            word = token.text.upper()
            if word in ("VALUES", "SELECT", "WITH"):
                return None
            if word == "FORMAT":
                name = next(tokens, None)
                return (token, name) if name is not None and name.kind == "word" else None
    return NEED_MORE


def split_insert(buf: bytes, *, at_eof: bool) -> InsertHead | Pending | None:
    """Split ``buf`` into an ``INSERT ... FORMAT X`` head and the data that follows it.

    Returns :data:`NEED_MORE` when the head may continue past ``buf`` (``at_eof`` False),
    and None when ``buf`` does not start with such an insert: any other statement, and
    inserts without FORMAT (``VALUES`` data, ``INSERT ... SELECT``), which the engine takes
    whole. Raises UnicodeDecodeError if the head is not UTF-8.
    """
    text = buf.decode("latin-1")  # one char per byte: offsets are byte offsets
    try:
        clause = _format_clause(_significant(text, at_eof=at_eof))
    except _Incomplete:
        return NEED_MORE
    if isinstance(clause, Pending):
        return None if at_eof else NEED_MORE
    if clause is None:
        return None
    keyword, name = clause
    offset = _data_start(text, name.end, at_eof=at_eof)
    if isinstance(offset, Pending):
        return offset
    statement = buf[: keyword.start].decode("utf-8").strip()
    return InsertHead(statement=statement, fmt=name.text, data_offset=offset)


def first_keyword(text: str) -> str | None:
    """The statement's first word, upper-cased (``(`` for a parenthesised query)."""
    token = next(_significant(text), None)
    if token is None:
        return None
    return token.text.upper() if token.kind in ("word", "punct") else None


def produces_result(text: str) -> bool:
    """True for statements that answer with a result set (SELECT, SHOW, DESCRIBE, ...)."""
    return first_keyword(text) in _RESULT_KEYWORDS


def output_format(text: str) -> str | None:
    """The name in a trailing ``FORMAT X`` clause (optionally followed by SETTINGS or ``;``)."""
    tokens = list(_significant(text))
    depth = 0
    found: str | None = None
    for index, token in enumerate(tokens):
        if token.kind == "punct":
            depth += {"(": 1, ")": -1}.get(token.text, 0)
            continue
        if depth or token.kind != "word" or token.text.upper() != "FORMAT":
            continue
        if index + 1 >= len(tokens) or tokens[index + 1].kind != "word":
            continue
        rest = tokens[index + 2 :]
        if not rest or rest[0].text == ";" or rest[0].text.upper() == "SETTINGS":
            found = tokens[index + 1].text
    return found


def has_several_statements(text: str) -> bool:
    """True if a ``;`` is followed by another statement (ClickHouse's HTTP refuses that)."""
    after_semicolon = False
    for token in _significant(text):
        if after_semicolon and token.text != ";":
            return True
        if token.text == ";":
            after_semicolon = True
    return False


def quote_identifier(name: str) -> str:
    """``name`` as a back-quoted ClickHouse identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    """``value`` as a single-quoted ClickHouse string literal.

    The engine converts quoted literals to the type a setting needs, so setting values are
    always sent quoted.
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
