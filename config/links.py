"""The one check every address from data passes before it is stored or shown as a link.

Knowledge files, web pages and old rows name addresses that end up in `href`s the console,
the widget and the playground render. Only absolute http(s) addresses are links: anything
else (`javascript:`, `data:`, `vbscript:`, relative paths) would run or resolve in our origin.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# What browsers do before reading a scheme (WHATWG URL parsing): C0 controls and spaces at the
# ends are trimmed, and tabs and newlines anywhere are removed, so " java\tscript:" runs.
_ENDS = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HTTP = re.compile(r"https?://", re.I)


def safe_http_url(value: object) -> str:
    """`value` as an absolute http(s) address with a host, or "" for anything else."""
    if not isinstance(value, str):
        return ""
    url = _TAB_OR_NEWLINE.sub("", value.strip(_ENDS))
    if not _HTTP.match(url) or _CONTROL.search(url):
        return ""
    try:
        host = urlsplit(url).hostname
    except ValueError:  # a malformed port or IPv6 literal
        return ""
    return url if host else ""
