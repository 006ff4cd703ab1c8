"""Each bot chooses how it ranks its own knowledge, at sync time, without labels.

Why per bot: a product manual's feature names carry its meaning and keywords find them; a FAQ
answered in everyday words is found better by embeddings alone. One global setting fitted to
two FAQ sets turned keywords off for everybody.

How (all in memory, from the stored vectors and the keyword index: seconds for a few hundred
documents, bounded by SAMPLE questions for any size):
- questions are generated from the bot's own content, each held out from what it is checked
  against so it can't find itself:
  * headlines: a document's title or a section heading, checked against every chunk with its
    own title and heading taken out and no title vectors (every document alike: taking a title
    out of its own document only would penalise it wherever titles follow a template);
  * sentences: one body sentence per document, removed from the chunks that hold it (those are
    re-embedded and re-indexed without it); short or stopword-heavy ones are skipped, and so
    are the sentences the bot's adapter was trained on and those several documents share.
- every candidate setting ranks the documents for every question, as `search_documents`
  would: keyword share 0 (dense alone), 0.1, 0.25, 0.5, 0.75, 1 (keywords alone, dense breaks
  ties);
  "title" or "passage" scoring; with or without the adapter (when the bot has one).
- the choice starts from dense alone ("title" scoring, with the adapter: what every bot did
  before) and moves only when a candidate wins by more than the noise: its paired MRR gain
  over the current choice, averaging headlines and sentences equally, must exceed one standard
  error. Generated sentences share more exact words with the text than customers' questions
  do, which flatters keywords: so a keyword share must also not lose on the headlines alone
  (which read like questions). The adapter saw the titles in training, which flatters it: so it
  is switched off only if leaving it out wins anyway, and headlines compare keyword shares in
  the base model's space.

An LLM could paraphrase the generated questions to make them read like customers' (the bot's
OpenAI-compatible settings live in conversations, which knowledge must not import): `paraphrase`
is the hook, a function from questions to questions, identity by default.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django_q.tasks import async_task

from bots.models import Bot
from knowledge.adaptation import SEED as ADAPTER_SEED
from knowledge.adaptation import _articles, training_pairs
from knowledge.embeddings import get_embedder
from knowledge.keywords import KeywordIndex, index_build, tokens
from knowledge.models import Chunk, Document, RetrievalProfile
from knowledge.retrieval import DEFAULT, Setting, dense_values, fuse, profile_forget

log = logging.getLogger(__name__)

SAMPLE = 300  # questions at most, half headlines and half sentences
# Past this many chunks the self-check runs on a sample of whole documents (every candidate
# faces the same competitors; only the absolute scores are higher than on everything).
MAX_CORPUS_CHUNKS = 1_500
MIN_WORDS, MAX_WORDS, MIN_TERMS = 6, 40, 3
SHARES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
TOP = 10  # MRR@10, as `manage.py evaluate`
MIN_HEADLINES = 20  # fewer headlines than this can't veto keywords
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+•]\s+|\d{1,3}[.)]\s+|[QA]:\s*)")

Paraphrase = Callable[[list[str]], list[str]]


@dataclass
class Question:
    text: str
    document: int  # the document index it comes from (the right answer)
    group: str  # "headline" or "sentence"
    changed: dict[int, str]  # chunk row -> its text with the sentence held out


@dataclass
class Knowledge:
    """The bot's chunks as arrays (titles apart), as the self-check reads them."""

    ids: list[int]
    rows: np.ndarray  # each chunk's row in the keyword index
    texts: list[str]  # embed_text: title, heading and body
    documents: np.ndarray  # each chunk's document index
    base: np.ndarray  # chunk vectors
    adapted: np.ndarray | None  # chunk vectors in the adapter's space (NaN rows: none)
    title: np.ndarray  # per document: its title vector (NaN rows: none)
    title_adapted: np.ndarray | None
    titles: list[str]  # per document
    headings: list[str]  # per chunk
    kinds: list[str]  # per document kind


def knowledge_checksum(bot: Bot) -> str:
    """What a profile was built from: the chunks (ids change whenever text does), the model
    and the adapter."""
    digest = hashlib.sha256(f"{bot.embedding_model_active}|{bot.embedding_adapter}".encode())
    ids = Chunk.objects.filter(bot=bot, embedding_model=bot.embedding_model_active).order_by("id")
    for cid in ids.values_list("id", flat=True).iterator():
        digest.update(f"{cid};".encode())
    return digest.hexdigest()


def profile_refresh(
    *, bot: Bot, tune: bool = True, paraphrase: Paraphrase | None = None
) -> RetrievalProfile | None:
    """Rebuild the bot's keyword index and, with `tune`, choose its setting again, unless they
    already match its knowledge; safe to repeat.

    A sync calls it with tune=False (the index follows the chunks at once, in seconds, and the
    previous choice stands meanwhile) and queues the tuning for the worker
    (`profile_tune_later`), as it queues the adapter's training."""
    bot.refresh_from_db(fields=["embedding_model_active", "embedding_adapter"])
    model = bot.embedding_model_active
    checksum = knowledge_checksum(bot)
    current = RetrievalProfile.objects.filter(bot=bot, embedding_model=model).first()
    if current is not None and current.checksum == checksum:
        if not tune or not current.metrics.get("pending"):
            return current
    started = time.perf_counter()
    rows = list(
        Chunk.objects.filter(bot=bot, embedding_model=model)
        .exclude(kind=Chunk.Kind.TITLE)
        .order_by("document_id", "position")
        .values_list(
            "id",
            "document_id",
            "embed_text",
            "document__category",
            "document__product",
            "document__language",
        )
    )
    if not rows:
        RetrievalProfile.objects.filter(bot=bot, embedding_model=model).delete()
        return None
    index = index_build(rows)
    if tune:
        choice, metrics = choose(bot, _knowledge(bot, rows, index), index, paraphrase=paraphrase)
        choice_json = {
            "keyword_share": choice.keyword_share,
            "scoring": choice.scoring,
            "adapter": choice.adapter,
            "label": choice.label,
        }
    else:
        # The last choice stands until the worker has measured the new content.
        choice_json = current.choice if current is not None else {"label": DEFAULT.label}
        metrics = {**(current.metrics if current is not None else {}), "pending": True}
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    with transaction.atomic():
        profile, _ = RetrievalProfile.objects.update_or_create(
            bot=bot,
            embedding_model=model,
            defaults={
                "checksum": checksum,
                "adapter": bot.embedding_adapter,
                "payload": pickle.dumps(index),
                "choice": choice_json,
                "metrics": metrics,
            },
        )
    profile_forget()
    if tune:
        log.info("bot %s: retrieval setting %s (%s)", bot.pk, choice.label, metrics["reason"])
    return profile


def profile_tune_later(*, bot: Bot) -> None:
    """Queue the bot's tuning for the worker once the current transaction commits."""
    transaction.on_commit(
        lambda: async_task(
            "knowledge.tasks.retrieval_profile_refresh",
            bot.pk,
            task_name=f"knowledge-retrieval-{bot.pk}",
        )
    )


# --- The bot's knowledge, in memory -------------------------------------------------------------
def _knowledge(bot: Bot, rows: list[tuple], index: KeywordIndex) -> Knowledge:
    """The chunks of the self-check: all of them, or whole documents up to MAX_CORPUS_CHUNKS."""
    model, adapter = bot.embedding_model_active, bot.embedding_adapter
    documents = np.asarray([row[1] for row in rows])
    keep = np.arange(len(rows))
    if len(rows) > MAX_CORPUS_CHUNKS:
        rng = random.Random(0)
        chosen, total = set(), 0
        sizes = dict(zip(*np.unique(documents, return_counts=True), strict=True))
        for document in rng.sample(sorted(sizes), len(sizes)):
            if total + sizes[document] <= MAX_CORPUS_CHUNKS:
                chosen.add(document)
                total += sizes[document]
        keep = np.flatnonzero(np.isin(documents, list(chosen)))
    ids = [int(rows[i][0]) for i in keep]
    chunks = {
        cid: (heading, vector, own, adapted)
        for cid, heading, vector, own, adapted in Chunk.objects.filter(id__in=ids).values_list(
            "id", "heading", "embedding", "adapter", "adapter_embedding"
        )
    }
    document_ids, inverse = np.unique(documents[keep], return_inverse=True)
    docs = {
        d: (title, kind)
        for d, title, kind in Document.objects.filter(id__in=document_ids.tolist()).values_list(
            "id", "title", "kind"
        )
    }
    dims = len(chunks[ids[0]][1])
    nan_row = np.full(dims, np.nan, dtype=np.float32)

    def adapted_of(row) -> np.ndarray:
        return np.asarray(row[3], dtype=np.float32) if adapter and row[2] == adapter else nan_row

    base = np.asarray([np.asarray(chunks[c][1], dtype=np.float32) for c in ids])
    adapted = np.asarray([adapted_of(chunks[c]) for c in ids]) if adapter else None
    position = {int(d): i for i, d in enumerate(document_ids)}
    title = np.full((len(document_ids), dims), np.nan, dtype=np.float32)
    title_adapted = np.full_like(title, np.nan) if adapter else None
    for document_id, vector, own, vector_adapted in Chunk.objects.filter(
        bot=bot, embedding_model=model, kind=Chunk.Kind.TITLE, document_id__in=list(position)
    ).values_list("document_id", "embedding", "adapter", "adapter_embedding"):
        title[position[document_id]] = vector
        if adapter and own == adapter:
            title_adapted[position[document_id]] = vector_adapted
    return Knowledge(
        ids=ids,
        rows=keep,
        texts=[rows[i][2] for i in keep],
        documents=inverse,
        base=base,
        adapted=adapted,
        title=title,
        title_adapted=title_adapted,
        titles=[docs[int(d)][0] for d in document_ids],
        headings=[chunks[c][0] for c in ids],
        kinds=[docs[int(d)][1] for d in document_ids],
    )


def bare_texts(knowledge: Knowledge) -> list[str]:
    """Each chunk without its document's title and its heading: what a headline is checked
    against, for every document alike (removing a title only from its own document would
    penalise it wherever titles follow a template, "Setting up X", "Setting up Y")."""
    bare = []
    for row, text in enumerate(knowledge.texts):
        title = knowledge.titles[knowledge.documents[row]]
        text = _without(text, title) if title else text
        heading = knowledge.headings[row]
        bare.append(_without(text, heading) if heading else text)
    return bare


# --- Held-out questions -------------------------------------------------------------------------
def questions(bot: Bot, knowledge: Knowledge, *, sample: int = SAMPLE) -> list[Question]:
    """Headlines (checked against bare_texts) and sentences (each with the chunk texts it is
    held out of) of the bot's content; at most `sample`, half of each kind where there are
    enough."""
    rng = random.Random(0)
    chunks_of: dict[int, list[int]] = {}
    for row, document in enumerate(knowledge.documents):
        chunks_of.setdefault(int(document), []).append(row)
    documents = [d for d in chunks_of if knowledge.kinds[d] != Document.Kind.INTENT]
    headlines, sentences = [], []
    for d in documents:
        title = knowledge.titles[d]
        if title and len(tokens(title)) >= 2:
            headlines.append(Question(title, d, "headline", {}))
        seen = {title}
        for r in chunks_of[d]:
            heading = knowledge.headings[r]
            if heading and heading not in seen and len(tokens(heading)) >= 2:
                seen.add(heading)
                headlines.append(Question(heading, d, "headline", {}))
    trained = _adapter_sentences(bot)
    found = {
        d: list(
            dict.fromkeys(
                s for r in chunks_of[d] for s in _sentences(knowledge.texts[r], knowledge.titles[d])
            )
        )
        for d in documents
    }
    # A sentence several documents share (boilerplate, a repeated warning) names none of them.
    spread: dict[str, int] = {}
    for sentences_of in found.values():
        for sentence in sentences_of:
            spread[sentence] = spread.get(sentence, 0) + 1
    for d in documents:
        rows = chunks_of[d]
        candidates = [s for s in found[d] if s not in trained and spread[s] == 1]
        if candidates:
            sentence = rng.choice(candidates)
            changed = {
                r: _without(knowledge.texts[r], sentence)
                for r in rows
                if sentence in knowledge.texts[r]
            }
            sentences.append(Question(sentence, d, "sentence", changed))
    half = sample // 2
    take_headlines = min(len(headlines), max(half, sample - len(sentences)))
    headlines = rng.sample(headlines, take_headlines)
    sentences = rng.sample(sentences, min(len(sentences), sample - len(headlines)))
    return headlines + sentences


def _without(text: str, part: str) -> str:
    return re.sub(r"\n{2,}", "\n", text.replace(part, "", 1)).strip()


def _sentences(text: str, title: str) -> list[str]:
    """Body sentences that could be a question's content: long enough, with words that say
    something (not the title, not a list of stopwords)."""
    found = []
    for piece in _SENTENCE.split(text):
        sentence = _MARKUP.sub("", piece).strip()
        words = sentence.split()
        if (
            sentence
            and title not in sentence
            and MIN_WORDS <= len(words) <= MAX_WORDS
            and len(set(tokens(sentence))) >= MIN_TERMS
        ):
            found.append(sentence)
    return found


def _adapter_sentences(bot: Bot) -> set[str]:
    """The body sentences the bot's adapter learned from (knowledge/adaptation.py): checking
    on them would measure its memory."""
    if not bot.embedding_adapter:
        return set()
    pairs = training_pairs(_articles(bot), seed=ADAPTER_SEED)
    return {p.anchor for p in pairs}


# --- Measuring every candidate ------------------------------------------------------------------
def candidates(adapter: bool) -> list[Setting]:
    return [
        Setting(keyword_share=share, scoring=scoring, adapter=with_adapter)
        for with_adapter in ((True, False) if adapter else (True,))
        for scoring in ("title", "passage")
        for share in SHARES
    ]


def measure(
    bot: Bot, knowledge: Knowledge, index: KeywordIndex, qs: list[Question], texts: list[str]
) -> dict[Setting, tuple[np.ndarray, np.ndarray]]:
    """Each candidate's reciprocal rank (0 past TOP) and hit@1 on every question, ranking
    documents as search_documents does (a document by its best chunk on each side)."""
    from scipy.sparse import csc_matrix  # only with a keyword index, as knowledge/keywords.py

    adapter = knowledge.adapted is not None
    changed = sorted({text for q in qs for text in q.changed.values()})
    position = {text: i for i, text in enumerate(changed)}
    bare = bare_texts(knowledge) if any(q.group == "headline" for q in qs) else []
    spaces = [get_embedder(bot.embedding_model_active)]
    if adapter:
        spaces.append(get_embedder(bot.embedding_adapter))
    # Per space: the questions, the shortened chunks and the bare chunks.
    embedded = [(e.embed(texts), e.embed(changed), e.embed(bare)) for e in spaces]
    bare_keyword = None
    if bare:
        weights = [index.row_weights(text) for text in bare]
        bare_keyword = csc_matrix(
            (
                [w for row in weights for w in row.values()],
                (
                    [r for r, row in enumerate(weights) for _ in row],
                    [c for row in weights for c in row],
                ),
            ),
            shape=(len(bare), len(index.vocabulary)),
        )
    starts = np.flatnonzero(np.r_[True, np.diff(knowledge.documents) != 0])
    results = {s: (np.zeros(len(qs)), np.zeros(len(qs))) for s in candidates(adapter)}
    no_titles = np.full(len(knowledge.titles), np.nan)
    for n, (q, text) in enumerate(zip(qs, texts, strict=True)):
        terms = index.query_terms(text)
        sims, titles = [], []
        for (questions_space, changed_space, bare_space), matrix, title in zip(
            embedded,
            [knowledge.base, knowledge.adapted],
            [knowledge.title, knowledge.title_adapted],
            strict=False,
        ):
            vector = questions_space[n]
            if q.group == "headline":
                sims.append((bare_space @ vector).astype(np.float64))
                titles.append(no_titles)
                continue
            sim = (matrix @ vector).astype(np.float64)
            for r, new in q.changed.items():
                sim[r] = float(changed_space[position[new]] @ vector)
            sims.append(sim)
            titles.append((title @ vector).astype(np.float64))
        if q.group == "headline":
            keyword = (
                np.asarray(bare_keyword[:, terms].sum(axis=1), dtype=np.float64).ravel()
                if len(terms)
                else np.zeros(len(bare))
            )
        else:
            keyword = index.scores(text).astype(np.float64)[knowledge.rows]
            for r, new in q.changed.items():
                weights = index.row_weights(new)
                keyword[r] = sum(weights.get(int(t), 0.0) for t in terms)
        doc_keyword = np.maximum.reduceat(keyword, starts)
        chunk_titles = [t[knowledge.documents] for t in titles]
        for scoring in ("title", "passage"):
            for with_adapter in (True, False) if adapter else (True,):
                dense = dense_values(
                    sims[0],
                    sims[1] if adapter else None,
                    chunk_titles[0],
                    chunk_titles[1] if adapter else None,
                    scoring=scoring,
                    adapter=with_adapter,
                )
                doc_dense = np.maximum.reduceat(dense, starts)
                t = q.document
                for share in SHARES:
                    fused = fuse(doc_dense, doc_keyword, share)
                    rank = 1 + int(
                        np.sum(fused > fused[t])
                        + np.sum((fused == fused[t]) & (doc_dense > doc_dense[t]))
                    )
                    rr, hit = results[Setting(share, scoring, with_adapter)]
                    rr[n] = 1 / rank if rank <= TOP else 0.0
                    hit[n] = rank == 1
    return results


# --- Choosing -----------------------------------------------------------------------------------
def _gain(a: np.ndarray, b: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Mean paired gain of a over b, headlines and sentences weighing equally, and its
    standard error."""
    means, variances = [], []
    for group in ("headline", "sentence"):
        d = (a - b)[groups == group]
        if len(d):
            means.append(float(d.mean()))
            variances.append(float(d.var(ddof=1)) / len(d) if len(d) > 1 else 0.0)
    k = len(means)
    return sum(means) / k, (sum(variances) ** 0.5) / k


def decide(results, groups: np.ndarray, adapter: bool) -> tuple[Setting, str]:
    """Start from the default and move only on gains beyond one standard error."""
    chosen = DEFAULT
    reasons = []
    rr = {s: r[0] for s, r in results.items()}
    sentences = groups == "sentence"
    if sentences.sum() >= 2:
        passage = Setting(0.0, "passage", True)
        d = rr[passage][sentences] - rr[chosen][sentences]
        gain, se = float(d.mean()), float(d.std(ddof=1) / len(d) ** 0.5)
        if gain > se:
            chosen = passage
            reasons.append(f"passage scoring +{gain:.3f} MRR on sentences (se {se:.3f})")
    if adapter:
        off = Setting(0.0, chosen.scoring, False)
        gain, se = _gain(rr[off], rr[chosen], groups)
        if gain > se:
            chosen = off
            reasons.append(f"without the adapter +{gain:.3f} MRR (se {se:.3f})")
    headlines = groups == "headline"

    def honest(share: float) -> np.ndarray:
        # The adapter was trained on the titles (title -> its passages): on headlines it
        # recalls rather than generalises, so they compare keyword shares in the base model's
        # space, which never saw them; sentences (none it trained on) keep the adapter.
        with_adapter = rr[Setting(share, chosen.scoring, chosen.adapter)]
        if not (adapter and chosen.adapter):
            return with_adapter
        return np.where(headlines, rr[Setting(share, chosen.scoring, False)], with_adapter)

    best, best_gain = None, 0.0
    for share in SHARES[1:]:
        candidate = Setting(share, chosen.scoring, chosen.adapter)
        gain, se = _gain(honest(share), honest(0.0), groups)
        holds = (
            headlines.sum() < MIN_HEADLINES
            or float((honest(share) - honest(0.0))[headlines].mean()) >= 0
        )
        if gain > se and holds and gain > best_gain:
            best, best_gain = candidate, gain
            why = f"keywords {share:g} +{gain:.3f} MRR (se {se:.3f})"
    if best is not None:
        chosen = best
        reasons.append(why)
    return chosen, "; ".join(reasons) or "no candidate beat dense alone beyond the noise"


def choose(
    bot: Bot, knowledge: Knowledge, index: KeywordIndex, *, paraphrase: Paraphrase | None = None
) -> tuple[Setting, dict]:
    qs = questions(bot, knowledge)
    groups = np.asarray([q.group for q in qs])
    report = {
        "questions": len(qs),
        "headlines": int((groups == "headline").sum()),
        "sentences": int((groups == "sentence").sum()),
    }
    if len(qs) < 10:
        return DEFAULT, {**report, "reason": "too few questions to choose: dense alone"}
    texts = [q.text for q in qs]
    if paraphrase is not None:
        texts = paraphrase(texts)
    results = measure(bot, knowledge, index, qs, texts)
    chosen, reason = decide(results, groups, knowledge.adapted is not None)
    report["reason"] = reason
    report["candidates"] = [
        {
            "label": setting.label,
            "keyword_share": setting.keyword_share,
            "scoring": setting.scoring,
            "adapter": setting.adapter,
            "hit_at_1": round(float(hit.mean()), 4),
            "mrr": round(float(rr.mean()), 4),
            "mrr_headlines": _mean(rr[groups == "headline"]),
            "mrr_sentences": _mean(rr[groups == "sentence"]),
            "chosen": setting == chosen,
        }
        for setting, (rr, hit) in results.items()
    ]
    return chosen, report


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 4) if len(values) else None
