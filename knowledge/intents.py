"""Intent matching: a light per-bot classifier trained on the bot's own intent patterns.

Recipe (measured in `manage.py evaluate`, see README "Knowledge quality"):
- features: the MiniLM embedding of the text (the same vectors retrieval stores);
- classifier: multinomial logistic regression on the patterns (C=10), trained at sync time;
- confidence: sqrt(p_max) x cosine to the nearest pattern of the predicted intent: the
  classifier says which intent, the nearest pattern says whether the question is really like
  anything the bot was taught;
- threshold: calibrated per bot from its own patterns, never a global constant: 5-fold
  cross-validation over the patterns, and the threshold is the 5th percentile of held-out
  patterns' confidence (95% of in-scope phrasings are accepted). Below it, the question is out of
  scope for the bot's intents.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from bots.models import Bot

log = logging.getLogger(__name__)

C = 10.0
FOLDS = 5
ACCEPT_QUANTILE = 0.05
MIN_PATTERNS_FOR_CALIBRATION = 10


@dataclass
class IntentMatch:
    document_id: int
    tag: str
    confidence: float
    probability: float
    nearest: float
    accepted: bool
    threshold: float


def _training_rows(bot: Bot, model: str):
    from knowledge.models import Chunk, Document

    rows = list(
        Chunk.objects.filter(
            bot=bot,
            embedding_model=model,
            kind=Chunk.Kind.PATTERN,
            document__kind=Document.Kind.INTENT,
        )
        .order_by("document_id", "position")
        .values_list("document_id", "document__external_id", "embedding")
    )
    return rows


def _classifier():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=1000)


def _confidence(probability: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(probability, 0, 1)) * np.clip(nearest, 0, 1)


def _calibrate(x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Threshold from held-out patterns: each fold's classifier and nearest-pattern index see
    only the other folds, as a real customer's new phrasing would."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y)
    folds = min(FOLDS, int(counts[counts > 0].min())) if len(y) else 0
    if folds < 2 or len(y) < MIN_PATTERNS_FOR_CALIBRATION:
        # Too few patterns to hold any out: accept only close paraphrases.
        return 0.5, {"calibrated": False, "patterns": int(len(y))}
    scores, correct = [], []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        clf = _classifier().fit(x[train], y[train])
        proba = clf.predict_proba(x[test])
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
    from knowledge.models import IntentModel

    rows = _training_rows(bot, model)
    if not rows:
        IntentModel.objects.filter(bot=bot, embedding_model=model).delete()
        return
    doc_ids = sorted({doc_id for doc_id, _, _ in rows})
    checksum = hashlib.sha256(
        repr([(d, t, np.asarray(v, dtype=np.float32).tobytes()) for d, t, v in rows]).encode()
    ).hexdigest()
    current = IntentModel.objects.filter(bot=bot, embedding_model=model).first()
    if current and current.checksum == checksum:
        return
    index = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    tags = {doc_id: tag for doc_id, tag, _ in rows}
    x = np.asarray([np.asarray(v, dtype=np.float32) for _, _, v in rows])
    y = np.asarray([index[doc_id] for doc_id, _, _ in rows])
    threshold, metrics = _calibrate(x, y) if len(doc_ids) > 1 else (0.5, {"calibrated": False})
    classifier = _classifier().fit(x, y) if len(doc_ids) > 1 else None
    payload = pickle.dumps(
        {"classifier": classifier, "document_ids": doc_ids, "tags": [tags[d] for d in doc_ids]}
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
    _loaded.clear()
    log.info(
        "intent model for bot %s: %s intents, threshold %.3f, %s",
        bot.pk,
        len(doc_ids),
        threshold,
        metrics,
    )


_loaded: dict[tuple[int, str, str], dict] = {}


def _load(bot: Bot):
    from knowledge.models import IntentModel

    record = (
        IntentModel.objects.filter(bot=bot, embedding_model=bot.embedding_model_active)
        .only("id", "checksum", "threshold", "payload")
        .first()
    )
    if record is None:
        return None, None
    key = (bot.pk, bot.embedding_model_active, record.checksum)
    if key not in _loaded:
        # Our own worker wrote this payload into our own database; it is never user input.
        _loaded.clear()
        _loaded[key] = pickle.loads(bytes(record.payload))  # noqa: S301
    return _loaded[key], record.threshold


def intent_match(*, bot: Bot, vector: np.ndarray) -> IntentMatch | None:
    """The bot's best intent for an embedded question, with whether it clears the threshold."""
    model, threshold = _load(bot)
    if model is None:
        return None
    if model["classifier"] is None:
        position, probability = 0, 1.0
    else:
        proba = model["classifier"].predict_proba(vector[None, :])[0]
        position = int(proba.argmax())
        probability = float(proba[position])
    document_id = model["document_ids"][position]
    nearest = _nearest_pattern(bot, document_id, vector)
    confidence = float(_confidence(np.asarray(probability), np.asarray(nearest)))
    return IntentMatch(
        document_id=document_id,
        tag=model["tags"][position],
        confidence=confidence,
        probability=probability,
        nearest=nearest,
        accepted=confidence >= threshold,
        threshold=threshold,
    )


def _nearest_pattern(bot: Bot, document_id: int, vector: np.ndarray) -> float:
    literal = "[" + ",".join(f"{x:.6f}" for x in vector.tolist()) + "]"
    with connection.cursor() as cursor:
        # One intent's patterns (tens of rows): an exact scan is faster than any index here.
        cursor.execute(
            """
            SELECT max(1 - (embedding <=> %s::vector)) FROM knowledge_chunk
            WHERE document_id = %s AND embedding_model = %s AND kind = 'pattern'
            """,
            [literal, document_id, bot.embedding_model_active],
        )
        value = cursor.fetchone()[0]
    return float(value or 0.0)
