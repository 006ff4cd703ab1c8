"""A message's trace (STYLE.md 5: what each pipeline step saw and decided) laid out for people.

The pipeline owns the trace's shape and may add steps; this module only arranges whatever it
finds: the known keys first, in pipeline order, scalars as facts, lists of records (retrieved
chunks, gates) as tables, mappings (tokens, timings) as key/value rows. Nothing is dropped, so
a new step shows up without a change here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Pipeline order (conversations/pipeline/run.py); anything else follows, alphabetically.
ORDER = [
    "category",
    "subtype",
    "classify_method",
    "classify_scores",
    "classify_fallback",
    "query",
    "rewritten_query",
    "rewrite",
    "rewrite_fallback",
    "intent",
    "retrieved",
    "retrieve_error",
    "gate",
    # Actions (conversations/pipeline/actions.py): every call, its arguments and outcome.
    "action_resume",
    "action_binding",
    "actions",
    "actions_bound",
    "actions_fallback",
    "actions_model_text",
    "action_failed",
    "action_handoff",
    "sources",
    "answer_method",
    "outcome",
    "fallback",
    "guardrails",
    "model",
    "llm_calls",
    "tokens",
    "timings_ms",
    "attempt",
]
CELL_CHARS = 400
PASSAGE_CHARS = 160


@dataclass
class Section:
    key: str
    label: str
    value: str = ""  # a fact
    columns: list[str] = field(default_factory=list)  # a table
    rows: list[list[str]] = field(default_factory=list)


def _label(key: str) -> str:
    text = key.replace("_ms", " (ms)").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _section(key: str, value: Any) -> Section:
    section = Section(key=key, label=_label(key))
    if isinstance(value, dict) and value:
        section.columns = ["", ""]
        section.rows = [[_label(str(k)), _cell(v)] for k, v in value.items()]
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for record in value:
            section.columns += [str(k) for k in record if str(k) not in section.columns]
        section.rows = [[_cell(record.get(c)) for c in section.columns] for record in value]
        section.columns = [_label(c) for c in section.columns]
    else:
        section.value = _cell(value) if value not in ([], {}, "") else "—"
    return section


def _excerpt(text: str, limit: int = PASSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_chunks(retrieved: Any, chunks: dict[int, dict]) -> Any:
    """Retrieved chunks are traced by id and score; a person wants to read which passage."""
    if not isinstance(retrieved, list):
        return retrieved
    rows = []
    for hit in retrieved:
        if isinstance(hit, dict):
            chunk = chunks.get(hit.get("chunk_id")) or {}
            hit = {
                **hit,
                "document": chunk.get("title", "(no longer in the knowledge)"),
                "passage": _excerpt(chunk.get("text", "")),
            }
        rows.append(hit)
    return rows


def retrieved_chunk_ids(trace: dict | None) -> list:
    if not isinstance(trace, dict) or not isinstance(trace.get("retrieved"), list):
        return []
    return [hit.get("chunk_id") for hit in trace["retrieved"] if isinstance(hit, dict)]


def sections(trace: dict | None, *, chunks: dict[int, dict] | None = None) -> list[Section]:
    """The trace as sections in pipeline order; `chunks` (id → title, text) names the
    retrieved passages."""
    if not isinstance(trace, dict):
        return []
    rank = {key: i for i, key in enumerate(ORDER)}
    keys = sorted(trace, key=lambda k: (rank.get(k, len(ORDER)), k))
    out = []
    for key in keys:
        value = trace[key]
        if key == "retrieved" and chunks is not None:
            value = _with_chunks(value, chunks)
        out.append(_section(key, value))
    return out


def raw(trace: dict | None) -> str:
    """The trace as stored, indented: what the "details" toggle shows."""
    return json.dumps(trace or {}, indent=2, ensure_ascii=False, default=str)
