"""When may a bot answer with its best intent? Calibrated per bot against near misses.

The hard out-of-scope request is not "a lasagne recipe" but a neighbour of something the bot
knows: "turn the heater on" when only "turn the heater off" was written. The classifier picks
"heater off" with high probability and the nearest pattern is close, so a threshold calibrated on
in-scope phrasings alone (how the first version worked) accepts it.

So we rehearse that failure on the bot's own patterns, at training time (leave-intents-out
cross-validation):
- the intents are split into GROUPS disjoint groups; in each of ROUNDS rounds one group is held
  out whole (its patterns play near out-of-scope requests whose neighbours stay) and IN_SHARE of
  every kept intent's patterns are held out too (in-scope phrasings the classifier has not seen);
- a classifier trained on the rest scores each held-out example, and we record its features:
  the top probability, the margin to the second intent, the cosine to the nearest pattern of
  the predicted intent and how much closer that is than the runner-up intent's, and the share
  of the example's known words that the predicted intent's patterns never use;
- a small logistic regression on those features learns P(in scope and correctly classified):
  the acceptance score;
- the cut-off on that score minimises the expected share of wrong outcomes on the held-out
  examples, counting a refused in-scope answer and an accepted near miss as equally bad and
  assuming OOS_PRIOR of the requests are near misses: it maximises
  (1 - OOS_PRIOR) x accepted-and-correct rate + OOS_PRIOR x near-miss rejection rate, never
  refusing more than 1 - MIN_ACCEPT of the correctly classified in-scope examples (a bot that
  refuses what it knows is no better than one that answers what it does not).

The weights and the cut-off come from each bot's own patterns, never from benchmark queries;
OOS_PRIOR and MIN_ACCEPT only state the objective, the same for every bot.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# The intents are split into GROUPS; ROUNDS of them are held out in turn (fewer rounds than
# groups bounds the training cost: each round trains one classifier on ~64% of the patterns).
# A small bot (up to SMALL_BOT patterns) rehearses every group, and up to SMALL_BOT_INTENTS
# intents it holds out one intent at a time: its rounds cost little, and it has few examples.
GROUPS = 5
ROUNDS = 3
SMALL_BOT = 1500
SMALL_BOT_INTENTS = 30
IN_SHARE = 0.2
# The cut-off's objective (see the module docstring): the assumed share of near misses among
# requests, the same one in five as the intents held out per round.
OOS_PRIOR = 0.2
# ... and it always keeps at least this share of the correctly classified in-scope examples.
MIN_ACCEPT = 0.90
MIN_INTENTS = 4
MIN_PATTERNS = 20
FEATURES = ("p_max", "margin", "nearest", "nearest_gap", "unexplained")
# The direction in which each feature is evidence for the answer: a weight the other way (a
# small bot's noise) is dropped, so acceptance never rises as the evidence gets worse.
SIGNS = np.array([1, 1, 1, 1, -1])


def features(proba, nearest, runner_up_nearest, unexplained):
    """One row per question: see FEATURES. `proba` is the classifier's (n, intents) output;
    `nearest` the cosine to the predicted intent's closest pattern, `runner_up_nearest` to the
    second intent's, `unexplained` from `unexplained_words`."""
    ordered = np.sort(proba, axis=1)
    p_max = ordered[:, -1]
    margin = p_max - (ordered[:, -2] if proba.shape[1] > 1 else 0.0)
    return np.column_stack([p_max, margin, nearest, nearest - runner_up_nearest, unexplained])


def intent_words(tfidf, texts: list[str], labels: np.ndarray, size: int):
    """(size x vocabulary) sparse 0/1: which of the bot's words each intent's patterns use."""
    from scipy.sparse import csr_matrix  # only with a classifier

    words = tfidf.transform(texts)
    rows = csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), (size, len(texts)))
    used = (rows @ words).tocsr()
    used.data[:] = 1.0
    return used


def unexplained_words(tfidf, used, texts: list[str], predicted: np.ndarray) -> np.ndarray:
    """Share of each question's words the bot knows (single words of its TF-IDF vocabulary)
    that the predicted intent's patterns never use. "Turn the heating on" predicted as "heater
    off": "on" is a word the bot knows (from "lights on") that no "heater off" pattern has.
    Words are counted, not IDF-weighted: "on" is common across the bot's patterns, which is
    exactly why it tells its on/off intents apart. Words the bot has never seen do not count:
    they say nothing about which intent was meant."""
    if not hasattr(tfidf, "_single_words"):
        names = tfidf.get_feature_names_out()
        tfidf._single_words = np.array([" " not in n for n in names], dtype=np.float64)
    known = tfidf.transform(texts).multiply(tfidf._single_words[None, :]).tocsr()
    known.eliminate_zeros()  # the word pairs, zeroed above
    known.data[:] = 1.0
    total = np.asarray(known.sum(axis=1)).ravel()
    covered = np.asarray(known.multiply(used[predicted]).sum(axis=1)).ravel()
    return np.where(total > 0, 1.0 - covered / np.maximum(total, 1), 0.0)


def nearest_by_intent(sims: np.ndarray, labels: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each row of `sims` (question x pattern cosines), the highest cosine among patterns
    whose label is that row's `wanted` label (-1 when the intent has no pattern there)."""
    same = labels[None, :] == wanted[:, None]
    return np.where(same, sims, -1.0).max(axis=1)


class Acceptance:
    """Logistic regression over standardised FEATURES; score = P(answer is right)."""

    def __init__(self, coef, intercept, mean, scale, cutoff):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.cutoff = float(cutoff)

    def score(self, rows: np.ndarray) -> np.ndarray:
        z = ((np.asarray(rows, dtype=np.float64) - self.mean) / self.scale) @ self.coef
        return 1.0 / (1.0 + np.exp(-(z + self.intercept)))


def _rounds(y: np.ndarray, rng: np.random.Generator):
    """(train, held-in, held-out) index arrays per round; see the module docstring."""
    intents = rng.permutation(np.unique(y))
    small = len(y) <= SMALL_BOT
    count = len(intents) if small and len(intents) <= SMALL_BOT_INTENTS else GROUPS
    groups = np.array_split(intents, min(count, len(intents)))
    for group in groups if small else groups[:ROUNDS]:
        out = np.isin(y, group)
        held_in = np.zeros(len(y), dtype=bool)
        for label in np.setdiff1d(intents, group):
            members = np.flatnonzero(y == label)
            # At least one pattern of each kept intent stays in training.
            take = min(len(members) - 1, int(round(IN_SHARE * len(members))))
            if take > 0:
                held_in[rng.choice(members, size=take, replace=False)] = True
        yield np.flatnonzero(~out & ~held_in), np.flatnonzero(held_in), np.flatnonzero(out)


def calibrate(
    x: np.ndarray, texts: list[str], y: np.ndarray, make_classifier: Callable
) -> tuple[Acceptance | None, dict]:
    """The bot's acceptance model and what the calibration measured, or None when the bot has
    too few intents or patterns to hold any out (the caller then accepts only close matches)."""
    intents = len(np.unique(y))
    if intents < MIN_INTENTS or len(y) < MIN_PATTERNS:
        return None, {"calibrated": False, "intents": intents, "patterns": int(len(y))}
    rng = np.random.default_rng(0)
    rows, positive, is_out, in_correct = [], [], [], []
    rounds = 0
    for train, held_in, held_out in _rounds(y, rng):
        rounds += 1
        test = np.concatenate([held_in, held_out])
        clf = make_classifier().fit(x[train], [texts[i] for i in train], y[train])
        proba = clf.predict_proba(x[test], [texts[i] for i in test])
        order = np.argsort(-proba, axis=1)
        first = clf.classes_[order[:, 0]]
        second = clf.classes_[order[:, 1]]
        sims = x[test] @ x[train].T
        nearest = nearest_by_intent(sims, y[train], first)
        runner_up = nearest_by_intent(sims, y[train], second)
        used = intent_words(clf.tfidf, [texts[i] for i in train], y[train], int(y.max()) + 1)
        unexplained = unexplained_words(clf.tfidf, used, [texts[i] for i in test], first)
        rows.append(features(proba, nearest, runner_up, unexplained))
        out = np.arange(len(test)) >= len(held_in)
        correct = ~out & (first == y[test])
        positive.append(correct)
        is_out.append(out)
        in_correct.append(correct[~out])
    rows = np.concatenate(rows)
    positive = np.concatenate(positive)
    is_out = np.concatenate(is_out)
    acceptance = _fit_acceptance(rows, positive)
    scores = acceptance.score(rows)
    cutoff, found = _cutoff(scores, positive, is_out)
    acceptance.cutoff = cutoff
    metrics = {
        "calibrated": True,
        "method": "leave-intents-out",
        "rounds": rounds,
        "intents": intents,
        "patterns": int(len(y)),
        "held_in": int((~is_out).sum()),
        "held_out": int(is_out.sum()),
        "cv_accuracy": round(float(np.concatenate(in_correct).mean()), 4),
        "cutoff": round(cutoff, 4),
        **found,
        "weights": dict(zip(FEATURES, np.round(acceptance.coef, 3).tolist(), strict=True)),
    }
    return acceptance, metrics


def _fit_acceptance(rows: np.ndarray, positive: np.ndarray) -> Acceptance:
    from sklearn.linear_model import LogisticRegression  # only when training

    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale == 0] = 1.0
    if positive.all() or not positive.any():  # nothing to tell apart: a constant score
        intercept = 10.0 if positive.all() else -10.0
        return Acceptance(np.zeros(rows.shape[1]), intercept, mean, scale, 0.5)
    keep = np.ones(rows.shape[1], dtype=bool)
    while True:
        model = LogisticRegression(C=1.0, class_weight="balanced")
        model.fit(((rows - mean) / scale)[:, keep], positive)
        coef = np.zeros(rows.shape[1])
        coef[keep] = model.coef_[0]
        wrong = keep & (coef * SIGNS < 0)
        if not wrong.any() or keep.sum() == 1:
            return Acceptance(coef, model.intercept_[0], mean, scale, 0.5)
        keep &= ~wrong


def _cutoff(scores: np.ndarray, positive: np.ndarray, is_out: np.ndarray) -> tuple[float, dict]:
    """See the module docstring: maximise the prior-weighted accepted-correct (in scope) and
    rejected (near out of scope) rates, keeping at least MIN_ACCEPT of the correct in-scope
    examples."""
    in_scope = ~is_out
    candidates = np.unique(scores)
    # Accepting at `c` means score >= c: the rates for every candidate at once.
    order = np.argsort(scores)
    sorted_scores = scores[order]
    start = np.searchsorted(sorted_scores, candidates, side="left")  # rejected below

    def rejected_before(mask):
        cumulative = np.concatenate([[0], np.cumsum(mask[order])])
        return cumulative[start]

    correct = positive & in_scope
    n_in, n_out, n_correct = in_scope.sum(), max(is_out.sum(), 1), max(correct.sum(), 1)
    accepted_correct = (correct.sum() - rejected_before(correct)) / max(n_in, 1)
    out_rejected = rejected_before(is_out) / n_out
    kept_correct = (correct.sum() - rejected_before(correct)) / n_correct
    weighted = (1 - OOS_PRIOR) * accepted_correct + OOS_PRIOR * out_rejected
    objective = np.where(kept_correct >= MIN_ACCEPT, weighted, -np.inf)
    best = int(np.argmax(objective))
    return float(candidates[best]), {
        "self_accepted_correct": round(float(accepted_correct[best]), 4),
        "self_near_oos_rejected": round(float(out_rejected[best]), 4),
    }
