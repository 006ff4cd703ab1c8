import csv
import io
import json

import pytest

FAQ_ROWS = [
    (
        "How long does shipping take?",
        "Standard shipping takes 3 to 5 business days. Express arrives the next business day.",
        "shipping",
    ),
    (
        "Can I return an item?",
        "You can return any unused item within 30 days of delivery for a full refund.",
        "returns",
    ),
    (
        "How do I reset my password?",
        "Open Settings, choose Security, then Reset password. We e-mail you a link valid for "
        "one hour.",
        "account",
    ),
    (
        "What does error E-4012 mean?",
        "E-4012 means your card issuer declined the payment. Try another card or call your bank.",
        "billing",
    ),
]


def _csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["question", "answer", "category"])
    writer.writerows(rows)
    return out.getvalue().encode()


FAQ_CSV = _csv(FAQ_ROWS)

INTENTS = {
    "intents": [
        {
            "tag": "card_arrival",
            "patterns": [
                "When will my card arrive?",
                "My new card has not come yet",
                "How long until I get my card?",
                "card still not delivered",
                "Where is my debit card?",
                "has my card been sent",
            ],
            "responses": ["Cards arrive within 5 working days of ordering."],
        },
        {
            "tag": "lost_card",
            "patterns": [
                "I lost my card",
                "My card was stolen",
                "I can't find my card anywhere",
                "someone took my wallet with my card",
                "block my lost card",
                "card missing, please freeze it",
            ],
            "responses": ["Freeze your card in the app right away, then order a replacement."],
        },
        {
            "tag": "exchange_rate",
            "patterns": [
                "What exchange rate do you use?",
                "How much is a euro in dollars?",
                "currency conversion rate",
                "is the exchange rate good",
                "what rate for converting pounds",
                "exchange rates today",
            ],
            "responses": ["We use the interbank rate with no markup on weekdays."],
        },
    ]
}
INTENTS_JSON = json.dumps(INTENTS).encode()


@pytest.fixture
def q_sync(monkeypatch):
    """Run django-q2 tasks in-process, as the worker would, at enqueue time."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
