"""Web page and sitemap sources: fetch what a source points at and turn it into documents.

The worker calls `source_fetch` from the sync (knowledge/sync.py), which then applies the
documents exactly as it applies an upload's. Everything that can go wrong with a site (it is
down, answers 404, sends 200 MB, is not a sitemap) is a FetchError whose message is shown on
the source, names the address and says why; the sync then keeps the previous version serving
and `retry_later` says when to try again.

Pages are parsed by the upload parsers (knowledge/parsers/), chosen by the Content-Type the
server declares, else by the address's extension and the content. Each document's `url` is the
page's address, so answers cite it, and its id is that address.
"""

from __future__ import annotations

import gzip
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx2 as httpx
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models import Q
from django.utils import timezone

from config.netguard import AddressRefused, error_reason, guarded_client
from knowledge.isolation import parse_budget, parse_isolated
from knowledge.models import Chunk, Document, KnowledgeSource
from knowledge.parsers import (
    MAX_UPLOAD_BYTES,
    ParsedDocument,
    ParseError,
    detect_format,
    stable_id,
)
from knowledge.parsers import parse_upload as parse_file

USER_AGENT = "Handoff knowledge sync"
TIMEOUT = httpx.Timeout(20.0, connect=10.0)  # per connect / read, not for the whole download
PAGE_DEADLINE = 60.0  # seconds for one whole response: a server dripping bytes is cut off
# A sitemap's pages, fetched one after another, politely. The worker kills a task after 10
# minutes (Q_CLUSTER timeout) and embedding needs its share of that.
CRAWL_BUDGET = 300.0
MAX_REDIRECTS = 5
MAX_CHILD_SITEMAPS = 50  # of a sitemap index; an index inside those is not followed
REASONS_SHOWN = 3
FIRST_RETRY = timedelta(minutes=5)
MAX_URL_CHARS = 1000  # KnowledgeSource.url and Document.url
_MAX_ID_CHARS = 500  # Document.external_id

# The choices the knowledge page offers; admin takes any duration.
SYNC_INTERVALS = {
    "hourly": ("Every hour", timedelta(hours=1)),
    "6h": ("Every 6 hours", timedelta(hours=6)),
    "daily": ("Every day", timedelta(days=1)),
    "weekly": ("Every week", timedelta(weeks=1)),
}

# What a server's Content-Type says, where it settles the format on its own.
_MIME_FORMATS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/pdf": "pdf",
    "text/csv": "faq_csv",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/yaml": "intents",
    "application/x-yaml": "intents",
    "text/yaml": "intents",
}
_SINGLE_DOCUMENT_FORMATS = ("html", "markdown", "text", "pdf")


class FetchError(Exception):
    """Why a source could not be fetched or read, for the person who added it."""


@dataclass(frozen=True)
class Fetched:
    url: str
    content_type: str  # the MIME type alone, lower case, "" when the server sent none
    data: bytes


# --- Addresses --------------------------------------------------------------------------------
def url_clean(url: str) -> str:
    """The address as it will be fetched (fragment dropped), or a ValidationError saying what
    is wrong with it."""
    url = (url or "").strip()
    if not url:
        raise ValidationError("Enter the address of a web page or a sitemap.")
    scheme = re.match(r"([a-z][a-z0-9+.-]*):(?!\d)", url, re.I)
    if scheme is None:
        raise ValidationError(f"{url} has no scheme: write it in full, like https://{url}")
    if scheme.group(1).lower() not in ("http", "https"):
        raise ValidationError(
            f'Only http:// and https:// addresses can be fetched, not "{scheme.group(1)}:".'
        )
    if len(url) > MAX_URL_CHARS:
        raise ValidationError(
            f"The address is {len(url)} characters long; the limit is {MAX_URL_CHARS}."
        )
    parts = urlsplit(url)
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        # Intranet hosts are often one word ("http://wiki/"), which URLValidator refuses.
        one_word = re.fullmatch(r"[a-z0-9-]{1,63}", parts.hostname or "", re.I)
        if not (settings.KNOWLEDGE_FETCH_PRIVATE_NETWORKS and one_word):
            raise ValidationError(f"{url} is not a valid web address.") from None
    if parts.username or parts.password:
        raise ValidationError(
            "Addresses with a user name or password are not supported: the page must be public."
        )
    return _without_fragment(url)


def _without_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, ""))


def _document_id(value: str) -> str:
    return stable_id(value, limit=_MAX_ID_CHARS)


# --- Fetching ---------------------------------------------------------------------------------
def client() -> httpx.Client:
    return guarded_client(
        allow_private=settings.KNOWLEDGE_FETCH_PRIVATE_NETWORKS,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=TIMEOUT,
        headers={"User-Agent": USER_AGENT},
    )


def _refused(exc: AddressRefused) -> str:
    if exc.ip is not None:
        return (
            f"{exc.url} is on a private network ({exc.ip}); only public addresses are fetched "
            "(KNOWLEDGE_FETCH_PRIVATE_NETWORKS=1 allows intranet sites)."
        )
    if exc.reason:
        return f"Could not reach {exc.url}: {exc.reason}."
    return str(exc)


def fetch(url: str, http: httpx.Client) -> Fetched:
    """The body at `url`, after redirects, within the size and time limits."""
    started = time.monotonic()
    try:
        with http.stream("GET", url) as response:
            if not response.is_success:
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                raise FetchError(f"{url} answered {response.status_code}{reason}.")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
                raise FetchError(_too_large(url, int(declared)))
            body = bytearray()
            for part in response.iter_bytes():
                body += part
                if len(body) > MAX_UPLOAD_BYTES:
                    raise FetchError(_too_large(url, None))
                if time.monotonic() - started > PAGE_DEADLINE:
                    raise FetchError(f"{url} took over {PAGE_DEADLINE:.0f} s to download.")
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return Fetched(url=url, content_type=mime, data=bytes(body))
    except FetchError:
        raise
    except AddressRefused as exc:
        raise FetchError(_refused(exc)) from None
    except httpx.TooManyRedirects:
        raise FetchError(f"{url} redirects more than {MAX_REDIRECTS} times.") from None
    except httpx.TimeoutException:
        raise FetchError(f"Could not reach {url}: no answer within {TIMEOUT.read:.0f} s.") from None
    except httpx.TransportError as exc:
        raise FetchError(f"Could not reach {url}: {error_reason(exc)}.") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"Could not fetch {url}: {error_reason(exc)}.") from None


def _too_large(url: str, size: int | None) -> str:
    limit = MAX_UPLOAD_BYTES // (1024 * 1024)
    if size is None:  # no length announced: counted while reading
        return f"{url} is larger than {limit} MB, the limit for one page."
    return f"{url} is {size / 1024 / 1024:.1f} MB; the limit for one page is {limit} MB."


# --- Pages into documents ---------------------------------------------------------------------
def page_documents(url: str, http: httpx.Client) -> list[ParsedDocument]:
    fetched = fetch(url, http)
    name = _filename(url)
    try:
        fmt = _format(fetched, name)
        # A PDF can take minutes of CPU for a few KB, so it is read where it can be stopped;
        # the other formats cost about their size, already capped, and stay in this process.
        parse = parse_isolated if fmt == "pdf" else parse_file
        documents = parse(filename=name, data=fetched.data, format=fmt, budget=parse_budget())
    except ParseError as exc:
        raise FetchError(f"{url}: {exc}") from None
    for doc in documents:
        if fmt in _SINGLE_DOCUMENT_FORMATS:  # always exactly one document
            doc.external_id, doc.url = _document_id(url), url
        else:  # a JSONL, FAQ or intents file: one page, many documents, each keeps its own url
            doc.external_id = _document_id(f"{url}#{doc.external_id}")
            doc.url = doc.url or url
    return documents


def _format(fetched: Fetched, name: str) -> str:
    mime = fetched.content_type
    if mime in _MIME_FORMATS:
        return _MIME_FORMATS[mime]
    if mime in ("application/json", "text/json"):
        return detect_format(_stem(name) + ".json", fetched.data)  # intents, or says why not
    try:
        return detect_format(name, fetched.data)
    except ParseError:
        if mime.startswith("text/"):
            return "text"
        raise ParseError(
            f"it is {mime or 'of no declared type'}, which can't be learnt from. Pages can be "
            "HTML, Markdown, plain text, PDF, JSON Lines articles, FAQ CSV or intent files."
        ) from None


def _filename(url: str) -> str:
    parts = urlsplit(url)
    segments = [s for s in unquote(parts.path).split("/") if s]
    return segments[-1] if segments else parts.hostname or "page"


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name.strip(".") else name


# --- Sitemaps ---------------------------------------------------------------------------------
def sitemap_pages(url: str, http: httpx.Client) -> tuple[list[str], list[str]]:
    """The page addresses a sitemap (or a sitemap index, one level deep) lists, capped at
    KNOWLEDGE_SITEMAP_MAX_PAGES, and notes on what was left out.

    A sitemap that cannot be fetched or read fails the whole sync, child sitemaps included:
    syncing without its pages would delete them from the bot's knowledge.
    """
    kind, locs = _sitemap(fetch(url, http))
    notes = []
    if kind == "sitemapindex":
        if len(locs) > MAX_CHILD_SITEMAPS:
            notes.append(
                f"The sitemap index lists {len(locs)} sitemaps; the first "
                f"{MAX_CHILD_SITEMAPS} are read."
            )
        pages, nested = [], 0
        for child in locs[:MAX_CHILD_SITEMAPS]:
            child_kind, child_locs = _sitemap(fetch(child, http))
            if child_kind == "sitemapindex":
                nested += 1
            else:
                pages += child_locs
        if nested:
            notes.append(f"{nested} nested sitemap indexes are not followed (one level only).")
    else:
        pages = locs
    pages = list(dict.fromkeys(_without_fragment(p) for p in pages if _is_web_url(p)))
    if not pages:
        raise FetchError(f"{url} lists no pages.")
    cap = settings.KNOWLEDGE_SITEMAP_MAX_PAGES
    if len(pages) > cap:
        notes.append(
            f"The sitemap lists {len(pages)} pages; the first {cap} are synced "
            "(KNOWLEDGE_SITEMAP_MAX_PAGES)."
        )
        pages = pages[:cap]
    return pages, notes


def _sitemap(fetched: Fetched) -> tuple[str, list[str]]:
    """("urlset" or "sitemapindex", the <loc> addresses in it)."""
    data = fetched.data
    if data[:2] == b"\x1f\x8b":  # sitemap.xml.gz
        data = _gunzip(fetched.url, data)
    if not data.lstrip()[:1] == b"<":
        # The protocol's plain-text form: one address per line.
        lines = data.decode("utf-8", errors="replace").splitlines()
        return "urlset", [line.strip() for line in lines if _is_web_url(line.strip())]
    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        line, column = exc.position
        message = str(exc).split(":")[0]
        raise FetchError(
            f"{fetched.url} is not a valid sitemap: line {line}, column {column + 1}: {message} "
            "(invalid XML)."
        ) from None
    except DefusedXmlException:
        raise FetchError(
            f"{fetched.url} declares XML entities or a DTD, which sitemaps do not need and "
            "are refused."
        ) from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise FetchError(
            f"{fetched.url} is not a sitemap: expected <urlset> or <sitemapindex>, found <{kind}>."
        )
    entry = "url" if kind == "urlset" else "sitemap"
    locs = [
        (loc.text or "").strip()
        for element in root
        if _local(element.tag) == entry
        for loc in element
        if _local(loc.tag) == "loc"
    ]
    return kind, [loc for loc in locs if _is_web_url(loc)]


def _gunzip(url: str, data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(MAX_UPLOAD_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise FetchError(f"{url} could not be decompressed: {exc}.") from None
    if len(out) > MAX_UPLOAD_BYTES:
        raise FetchError(_too_large(url, None))
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _is_web_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://")) and len(value) <= MAX_URL_CHARS


# --- A source's documents ---------------------------------------------------------------------
def source_fetch(
    *, source: KnowledgeSource, progress: Callable[[int, int], None] | None = None
) -> tuple[list[ParsedDocument], str]:
    """The documents a URL or sitemap source holds now, and a note for the source's error
    field ("" when all went well).

    A page of a sitemap that fails on its own keeps its previous documents (they are read back
    and passed on unchanged, so the sync neither deletes nor re-embeds them), and the note says
    how many failed and why. When the page or the sitemap itself fails, or every page does,
    this raises FetchError and the sync keeps everything as it was.
    """
    with client() as http:
        if source.kind == KnowledgeSource.Kind.URL:
            return page_documents(source.url, http), ""
        pages, notes = sitemap_pages(source.url, http)
        documents: list[ParsedDocument] = []
        failed: dict[str, str] = {}
        deadline = time.monotonic() + CRAWL_BUDGET
        for done, page in enumerate(pages):
            if time.monotonic() > deadline:
                reason = f"not fetched: the sync's {CRAWL_BUDGET:.0f} s budget ran out"
                failed.update((p, f"{p}: {reason}") for p in pages[done:])
                break
            try:
                documents += page_documents(page, http)
            except FetchError as exc:
                failed[page] = str(exc)
            if progress:
                progress(done + 1, len(pages))
    if len(failed) == len(pages):
        raise FetchError(f"None of the {len(pages)} pages could be fetched. {_first(failed)}")
    if failed:
        documents += _previous_documents(source, list(failed))
        notes.insert(
            0,
            f"{len(failed)} of {len(pages)} pages could not be fetched and keep their "
            f"previous version. {_first(failed)}",
        )
    return documents, " ".join(notes)


def _first(failed: dict[str, str]) -> str:
    shown = list(failed.values())[:REASONS_SHOWN]
    more = f" (and {len(failed) - len(shown)} more)" if len(failed) > len(shown) else ""
    return " ".join(shown) + more


def _previous_documents(source: KnowledgeSource, urls: list[str]) -> list[ParsedDocument]:
    """The stored documents of these pages, as the parser would have produced them: same
    fields, same checksum."""
    match = Q()
    for url in urls:
        match |= Q(external_id=_document_id(url)) | Q(external_id__startswith=f"{url}#")
    records = list(Document.objects.filter(source=source).filter(match))
    patterns: dict[int, list[str]] = {}
    # Intents keep their patterns only as chunks (one per pattern, in order).
    intent_ids = [r.pk for r in records if r.kind == Document.Kind.INTENT]
    model = source.bot.embedding_model_active
    for document_id, text in (
        Chunk.objects.filter(
            document_id__in=intent_ids, kind=Chunk.Kind.PATTERN, embedding_model=model
        )
        .order_by("position")
        .values_list("document_id", "text")
    ):
        patterns.setdefault(document_id, []).append(text)
    return [
        ParsedDocument(
            external_id=r.external_id,
            title=r.title,
            body=r.body,
            url=r.url,
            category=r.category,
            product=r.product,
            language=r.language,
            kind=r.kind,
            patterns=patterns.get(r.pk, []),
            responses=list(r.responses),
        )
        for r in records
    ]


def retry_later(source: KnowledgeSource) -> dict:
    """Fields that schedule a failed web source's next try: 5 minutes after the first failure,
    doubling with each one after, never later than its regular interval."""
    if source.kind == KnowledgeSource.Kind.UPLOAD:
        return {}
    failures = source.failure_count + 1
    delay = min(FIRST_RETRY * 2 ** min(failures - 1, 16), source.sync_interval)
    return {"failure_count": failures, "next_sync_at": timezone.now() + delay}
