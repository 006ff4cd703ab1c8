"""How the customer feels, from their words: VADER's compound score, -1 (angry) … 1 (happy).

VADER is a lexicon and rules, no model: microseconds per message, so every customer message is
scored on arrival. Its score goes into the message's trace; the conversation's is the mean over
the customer's latest few messages, so one "thanks" after three angry messages does not make
the queue think all is well.
"""

from __future__ import annotations

from functools import cache

from conversations.models import Conversation, Message

WINDOW = 3


@cache
def _analyzer():
    # Loads VADER's lexicon (~7,500 words) once per process.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_score(text: str) -> float:
    return round(_analyzer().polarity_scores(text)["compound"], 4)


def conversation_sentiment(conversation: Conversation) -> float | None:
    """Mean score of the customer's latest WINDOW messages; None before they wrote any."""
    latest = conversation.messages.filter(sender=Message.Sender.USER).order_by("-id")
    scores = []
    for text, trace in latest.values_list("text", "trace")[:WINDOW]:
        score = (trace or {}).get("sentiment")
        scores.append(sentiment_score(text) if score is None else score)
    return round(sum(scores) / len(scores), 4) if scores else None
