"""Intent matching: a light per-bot classifier trained on the bot's own intent patterns.

Recipe (measured in `manage.py evaluate` and `manage.py bench`, see README "Knowledge quality"):
- features: the MiniLM embedding of the text (the same vectors retrieval stores) joined with
  TF-IDF of its words and word pairs, which catches the exact terms embeddings blur
  ("top up" vs "top-up fee");
- classifier: multinomial logistic regression on the patterns (C=10), trained at sync time;
- acceptance (may the bot answer with its best intent?): a small model over the top
  probability, the margin between the top two intents, the cosines to the nearest pattern of
  each, and the share of the question's known words the intent's patterns never use,
  calibrated per bot against near out-of-scope requests rehearsed on its own patterns by
  holding out whole intents (knowledge/intent_calibration.py). `confidence` is its score,
  `threshold` its cut-off.
- a bot with too few intents to hold any out (2-3) keeps the first recipe: confidence = p_max x
  cosine to the nearest pattern of the predicted intent, threshold = 5th percentile of 5-fold
  held-out patterns' confidence; below 10 patterns, a fixed 0.5 (only close paraphrases).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from bots.models import Bot
from knowledge.embeddings import vector_literal
from knowledge.intent_calibration import (
    Acceptance,
    calibrate,
    features,
    intent_words,
    unexplained_words,
)
from knowledge.models import Chunk, Document, IntentModel
from knowledge.stored import versioned_payload

log = logging.getLogger(__name__)

C = 10.0
FOLDS = 5
ACCEPT_QUANTILE = 0.05
MIN_PATTERNS_FOR_CALIBRATION = 10
# Part of the checksum: a bot trained by an older recipe retrains at its next sync.
RECIPE = "leave-intents-out-1"


@dataclass
class IntentMatch:
    document_id: int
    tag: str
    confidence: float
    probability: float
    nearest: float
    accepted: bool
    threshold: float
    # p_max minus the runner-up intent's probability (1 for a one-intent bot).
    margin: float = 0.0


def _training_rows(bot: Bot, model: str):
    rows = list(
        Chunk.objects.filter(
            bot=bot,
            embedding_model=model,
            kind=Chunk.Kind.PATTERN,
            document__kind=Document.Kind.INTENT,
        )
        .order_by("document_id", "position")
        .values_list("document_id", "document__external_id", "embedding", "text")
    )
    return rows


class _Classifier:
    """Logistic regression over [embedding, TF-IDF(words, word pairs)]."""

    def __init__(self):
        # scikit-learn and scipy take a second to import: only a process that trains or reads
        # a classifier pays for them (unpickling one imports them by itself).
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        self.model = LogisticRegression(C=C, max_iter=500)

    def _features(self, vectors: np.ndarray, texts: list[str], fit: bool = False):
        from scipy.sparse import csr_matrix, hstack  # see __init__: only with a classifier

        words = self.tfidf.fit_transform(texts) if fit else self.tfidf.transform(texts)
        return hstack([csr_matrix(vectors), words]).tocsr()

    def fit(self, vectors: np.ndarray, texts: list[str], labels: np.ndarray) -> _Classifier:
        self.model.fit(self._features(vectors, texts, fit=True), labels)
        return self

    def predict_proba(self, vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        return self.model.predict_proba(self._features(vectors, texts))

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_


def _confidence(probability: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    return np.clip(probability, 0, 1) * np.clip(nearest, 0, 1)


def _calibrate_in_scope(x: np.ndarray, texts: list[str], y: np.ndarray) -> tuple[float, dict]:
    """For bots with too few intents to hold any out. Threshold from held-out patterns: each
    fold's classifier and nearest-pattern index see only the other folds, as a real customer's
    new phrasing would."""
    from sklearn.model_selection import StratifiedKFold  # only when training: see _Classifier

    counts = np.bincount(y)
    folds = min(FOLDS, int(counts[counts > 0].min())) if len(y) else 0
    if folds < 2 or len(y) < MIN_PATTERNS_FOR_CALIBRATION:
        # Too few patterns to hold any out: accept only close paraphrases.
        return 0.5, {"calibrated": False, "patterns": int(len(y))}
    scores, correct = [], []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        clf = _Classifier().fit(x[train], [texts[i] for i in train], y[train])
        proba = clf.predict_proba(x[test], [texts[i] for i in test])
        predicted = clf.classes_[proba.argmax(axis=1)]
        sims = x[test] @ x[train].T
        same = y[train][None, :] == predicted[:, None]
        nearest = np.where(same, sims, -1.0).max(axis=1)
        scores.extend(_confidence(proba.max(axis=1), nearest))
        correct.extend(predicted == y[test])
    scores = np.asarray(scores)
    threshold = float(np.quantile(scores, ACCEPT_QUANTILE))
    return threshold, {
        "calibrated": True,
        "folds": folds,
        "patterns": int(len(y)),
        "cv_accuracy": round(float(np.mean(correct)), 4),
        "cv_accepted": round(float(np.mean(scores >= threshold)), 4),
    }


def intent_model_train(*, bot: Bot, model: str) -> None:
    """(Re)train the bot's intent classifier from its current patterns; no-op if unchanged."""
    rows = _training_rows(bot, model)
    if not rows:
        IntentModel.objects.filter(bot=bot, embedding_model=model).delete()
        return
    doc_ids = sorted({row[0] for row in rows})
    checksum = hashlib.sha256(
        repr(
            [RECIPE]
            + [(d, t, text, np.asarray(v, dtype=np.float32).tobytes()) for d, t, v, text in rows]
        ).encode()
    ).hexdigest()
    current = (
        IntentModel.objects.filter(bot=bot, embedding_model=model)
        .values_list("checksum", flat=True)
        .first()
    )
    if current == checksum:
        return
    index = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    tags = {row[0]: row[1] for row in rows}
    x = np.asarray([np.asarray(row[2], dtype=np.float32) for row in rows])
    texts = [row[3] for row in rows]
    y = np.asarray([index[row[0]] for row in rows])
    started = time.perf_counter()
    acceptance, metrics = calibrate(x, texts, y, _Classifier)
    if acceptance is not None:
        threshold = acceptance.cutoff
    elif len(doc_ids) > 1:
        threshold, metrics = _calibrate_in_scope(x, texts, y)
    else:
        threshold, metrics = 0.5, {"calibrated": False}
    classifier = _Classifier().fit(x, texts, y) if len(doc_ids) > 1 else None
    words = intent_words(classifier.tfidf, texts, y, len(doc_ids)) if acceptance else None
    metrics["train_s"] = round(time.perf_counter() - started, 1)
    payload = pickle.dumps(
        {
            "classifier": classifier,
            "acceptance": acceptance,
            "words": words,
            "document_ids": doc_ids,
            "tags": [tags[d] for d in doc_ids],
        }
    )
    with transaction.atomic():
        IntentModel.objects.update_or_create(
            bot=bot,
            embedding_model=model,
            defaults={
                "checksum": checksum,
                "payload": payload,
                "threshold": threshold,
                "metrics": metrics,
            },
        )
    log.info(
        "intent model for bot %s: %s intents, threshold %.3f, %s",
        bot.pk,
        len(doc_ids),
        threshold,
        metrics,
    )


_loaded: dict[tuple[int, str, str], dict] = {}


def _load(bot: Bot):
    """The bot's classifier, unpickled once per process and version; the (megabytes of)
    payload is read from the database only when the version changed."""
    head = (
        IntentModel.objects.filter(bot=bot, embedding_model=bot.embedding_model_active)
        .values("id", "checksum", "threshold")
        .first()
    )
    if head is None:
        return None, None
    loaded = versioned_payload(_loaded, IntentModel, bot=bot, head=head)
    return loaded, head["threshold"]


def intent_match(*, bot: Bot, text: str, vector: np.ndarray) -> IntentMatch | None:
    """The bot's best intent for a question (its text and embedding), with whether the bot may
    answer with it (its calibrated acceptance, see the module docstring)."""
    model, threshold = _load(bot)
    if model is None:
        return None
    if model["classifier"] is None:
        proba = np.ones(1)
    else:
        proba = model["classifier"].predict_proba(vector[None, :], [text])[0]
    order = np.argsort(-proba, kind="stable")  # ties: the first, as argmax
    position = int(order[0])
    probability = float(proba[position])
    margin = probability - (float(proba[order[1]]) if len(order) > 1 else 0.0)
    ids = model["document_ids"]
    runner_up = ids[int(order[1])] if len(order) > 1 else None
    cosines = _nearest_patterns(bot, [d for d in (ids[position], runner_up) if d], vector)
    nearest = cosines.get(ids[position], 0.0)
    acceptance: Acceptance | None = model.get("acceptance")  # absent in older payloads
    if acceptance is not None:
        unexplained = unexplained_words(
            model["classifier"].tfidf, model["words"], [text], np.array([position])
        )
        row = features(
            proba[None, :],
            np.array([nearest]),
            np.array([cosines.get(runner_up, 0.0)]),
            unexplained,
        )
        confidence = float(acceptance.score(row)[0])
    else:
        confidence = float(_confidence(np.asarray(probability), np.asarray(nearest)))
    return IntentMatch(
        document_id=ids[position],
        tag=model["tags"][position],
        confidence=confidence,
        probability=probability,
        nearest=nearest,
        accepted=confidence >= threshold,
        threshold=threshold,
        margin=margin,
    )


def _nearest_patterns(bot: Bot, document_ids: list[int], vector: np.ndarray) -> dict[int, float]:
    """Cosine to the closest pattern of each of these intents."""
    with connection.cursor() as cursor:
        # Two intents' patterns (tens of rows): an exact scan is faster than any index here.
        cursor.execute(
            """
            SELECT document_id, max(1 - (embedding <=> %s::vector)) FROM knowledge_chunk
            WHERE document_id = ANY(%s) AND embedding_model = %s AND kind = 'pattern'
            GROUP BY document_id
            """,
            [vector_literal(vector), list(document_ids), bot.embedding_model_active],
        )
        return {document_id: float(value or 0.0) for document_id, value in cursor.fetchall()}
