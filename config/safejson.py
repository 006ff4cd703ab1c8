"""JSON from outside (socket frames, API bodies) read without letting its shape hurt us.

`json.loads` turns `[` nested some thousands deep into a RecursionError, which is no
ValueError: it escaped every decoder's error handling, closed sockets with 1011 and turned
the API's answer into a 500 HTML page. Nothing we accept is nested more than a few levels, so
anything deeper than MAX_DEPTH is refused like any other malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32


class TooDeep(ValueError):
    pass


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, except that nesting deeper than `max_depth` raises TooDeep (a ValueError),
    as does input too deep for the parser itself."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep(f"JSON nested more than {max_depth} levels deep.") from None
    if _depth_exceeds(value, max_depth):
        raise TooDeep(f"JSON nested more than {max_depth} levels deep.")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    # Iterative: the check itself must not recurse on what it is checking.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False
