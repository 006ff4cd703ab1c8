"""What the demo history's customers ask and the demo team answers (demo_history.py).

Topics follow the demo bot's knowledge (bots/demo/): each names the documents an answer cites
by their titles (an FAQ question, the warranty article, an intent), so citations point at the
bot's real documents. Escalations follow the default rules (escalation/defaults.py), with the
reason each rule writes (escalation/rules.py: "<rule name>: <why>").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    category: str
    weight: int
    sources: tuple[str, ...]
    asks: tuple[str, ...]
    answer: str
    intent: str = ""


TOPICS = [
    Topic(
        "shipping",
        9,
        ("How long does shipping take?",),
        (
            "How long does shipping take?",
            "when will my order arrive if I order today?",
            "how many days is delivery",
            "Do you ship abroad, and how long does it take?",
        ),
        "Standard shipping takes 3 to 5 business days within the country. Express shipping "
        "arrives the next business day if you order before 2 pm.",
    ),
    Topic(
        "shipping",
        5,
        ("How much does shipping cost?",),
        ("How much is shipping?", "is delivery free?", "what does express shipping cost"),
        "Standard shipping is free on orders over $50; below that it costs $4.95. Express "
        "shipping costs $14.95.",
    ),
    Topic(
        "shipping",
        10,
        ("How do I track my order?", "Order status"),
        ("Where is my order?", "how do I track my parcel", "has my package shipped yet?"),
        "Open the confirmation e-mail and select Track my order, or sign in and open Orders. "
        "Tracking appears within 24 hours of dispatch.",
        intent="order_status",
    ),
    Topic(
        "shipping",
        3,
        ("Can I change my delivery address?",),
        ("Can I change the delivery address?", "I moved, can I update the address on my order"),
        "You can change the address until the order is dispatched: open Orders, choose the "
        "order, then Change address.",
    ),
    Topic(
        "returns",
        7,
        ("What is your return policy?",),
        (
            "What is your return policy?",
            "can I return a sale item?",
            "how long do I have to return",
        ),
        "You can return unused items in their original packaging within 30 days of delivery "
        "for a full refund. Sale items can be returned within 14 days.",
    ),
    Topic(
        "returns",
        6,
        ("How do I return an item?",),
        (
            "How do I return an item?",
            "how do i send back my shoes",
            "do I pay for the return label?",
        ),
        "Sign in, open Orders, choose the item and select Return. Print the prepaid label and "
        "drop the parcel at any post office. Returns are free.",
    ),
    Topic(
        "returns",
        6,
        ("When will I get my refund?",),
        ("When will I get my refund?", "I returned my order last week, where is my money?"),
        "Refunds are issued to the original payment method within 5 business days of the "
        "return reaching our warehouse.",
    ),
    Topic(
        "returns",
        3,
        ("Can I exchange an item for a different size?",),
        ("Can I exchange for a bigger size?", "the jacket is too small, can I swap it?"),
        "Yes. Start a return and choose Exchange instead of Refund; we ship the new size as "
        "soon as the original is scanned at the post office.",
    ),
    Topic(
        "account",
        5,
        ("How do I reset my password?",),
        ("I forgot my password", "how do I reset my password?", "the reset link doesn't arrive"),
        "On the sign-in page choose Forgot password and enter your e-mail address. The link "
        "is valid for one hour; check your spam folder if it does not arrive.",
    ),
    Topic(
        "account",
        2,
        ("How do I delete my account?",),
        ("How do I delete my account?", "please remove my account and data"),
        "Open Settings, then Privacy, then Delete account. Deletion is permanent after 30 days.",
    ),
    Topic(
        "payments",
        3,
        ("Which payment methods do you accept?",),
        ("Do you take PayPal?", "which payment methods do you accept?", "can I pay with Apple Pay"),
        "We accept Visa, Mastercard, American Express, PayPal and Apple Pay. Gift cards can be "
        "combined with any of them.",
    ),
    Topic(
        "payments",
        4,
        ("Why was my payment declined?",),
        ("Why was my payment declined?", "my card keeps getting error E-4012"),
        "A decline usually comes from your bank: check the card number, expiry date and "
        "billing address, or try another card. E-4012 means the issuer refused the charge.",
    ),
    Topic(
        "warranty",
        4,
        ("Warranty and repairs",),
        ("My headphones stopped working, is that covered?", "how do I make a warranty claim?"),
        "Every Acme product has a two-year warranty against manufacturing defects. Sign in, "
        "open Orders, choose the product and select Report a problem.",
    ),
    Topic(
        "warranty",
        2,
        ("Warranty and repairs",),
        ("How much is a repair after the warranty?", "my speaker is 3 years old and broken"),
        "Out-of-warranty repairs cost a flat $39 plus parts. We quote the price before "
        "starting, and you can decline the repair.",
    ),
    Topic(
        "opening_hours",
        3,
        ("Opening hours",),
        ("When are you open?", "is customer service open on weekends?", "support hours"),
        "Our support team is available Monday to Friday, 8 am to 8 pm, and Saturday 9 am to "
        "5 pm (Eastern Time).",
        intent="opening_hours",
    ),
]

VAGUE = ["I have a problem", "it doesn't work", "help", "question about my thing", "hello??"]
OUT_OF_SCOPE = [
    "Can you write me a poem?",
    "what's the weather tomorrow",
    "Do you sell concert tickets?",
    "what's the best laptop for gaming",
]

AGENT_LINES = [
    "Thanks for waiting! I'm looking at your order now.",
    "I can see the parcel is held at the depot; I've asked the carrier to deliver it tomorrow.",
    "I've issued the refund: you'll see it on your statement within 5 business days.",
    "I've locked the account and sent a reset link to the address on file.",
    "I'm sorry about this. I've sent a replacement by express shipping, free of charge.",
    "Is there anything else I can help you with today?",
]

# The customer's side while an agent has the conversation.
CUSTOMER_REPLIES = [
    "Okay, thanks.",
    "Yes, that's the order.",
    "Sure, one moment.",
    "It's order 48213.",
]

CSAT_COMMENTS = {
    "bot": {
        1: ["The bot kept sending me the same article.", "Not helpful."],
        2: ["It took a while to find the right answer."],
        3: ["Okay, but I had to read the whole policy."],
        4: ["Quick answer, thanks."],
        5: ["Fast and clear, thank you!", "Exactly what I needed."],
    },
    "agent": {
        1: ["I waited far too long for a person."],
        2: ["Solved in the end, but slowly."],
        3: ["Fine."],
        4: ["Helpful agent, thanks."],
        5: ["Sorted out in minutes, great service!", "Very friendly and quick."],
    },
}

NAMES = ["Maria", "James", "Aisha", "Tom", "Lena", "Diego", "Priya", "Noah", "Chloe", "Omar"]


@dataclass(frozen=True)
class Escalation:
    """One way a conversation reaches people: which rule (trigger and category) and what the
    customer says; `kind` says how it unfolds in demo_history.Generator.escalates."""

    kind: str
    weight: int
    trigger: str
    label: str
    asks: tuple[tuple[str, str], ...] = ()  # (customer text, what the rule saw in it)
    category: str = ""
    reply: str = "I'm bringing in a person from our team who can help with this."
    level: str = ""
    sentiment: float = 0.0
    frustration: float = 0.0
    signals: tuple[str, ...] = ()
    channel: str = ""  # only on this channel

    def pick(self, rng) -> str:
        return rng.choice(self.asks)[0] if self.asks else ""

    def reason(self, rule, text: str) -> str:
        if rule is None:
            return f"{self.label}."
        why = dict(self.asks).get(text, "")
        if self.trigger == "sentiment":
            why = f"the customer is {self.level} (at or above {rule.level})"
        elif self.trigger == "frustration":
            why = f"frustration {self.frustration:.2f} ≥ {rule.threshold:.2f}"
        return f"{rule.name}: {why}"[:200]


_PERSON = "the message says “{}”"
ESCALATIONS = [
    Escalation(
        "rule",
        26,
        "human_request",
        "The customer asks for a person",
        (
            ("Can I talk to a person please?", _PERSON.format("talk to a person")),
            ("I want to speak to a human", _PERSON.format("speak to a human")),
            ("live agent", _PERSON.format("live agent")),
            ("Is there a real person I can chat with?", _PERSON.format("real person")),
        ),
    ),
    # An offer of a person taken with the widget's button (a low-confidence answer, or a
    # billing dispute or cancellation, whose rule offers): logged as the button's request.
    Escalation(
        "offer_then_person",
        20,
        "human_request",
        "The customer asks for a person",
        (
            ("I was charged twice for the same order", ""),
            ("I want to cancel my subscription", ""),
            ("the discount code didn't apply at checkout", ""),
            ("my parcel says delivered but it's not here", ""),
        ),
    ),
    Escalation("no_then_person", 10, "human_request", "The customer asks for a person"),
    Escalation("not_answered", 10, "not_answered", "The customer said the answer did not help"),
    Escalation(
        "rule",
        5,
        "category",
        "Legal matter",
        (
            ("I'm going to take legal action over this", "the message is classified legal"),
            (
                "My lawyer will contact you about the faulty heater",
                "the message is classified legal",
            ),
        ),
        category="legal",
        reply="I understand. I'm passing this to a manager right away.",
        sentiment=-0.5,
        signals=("legal_threat",),
    ),
    Escalation(
        "rule",
        7,
        "category",
        "Security concern",
        (
            (
                "Someone logged into my account and changed my e-mail",
                "the message is classified security",
            ),
            (
                "I think my account was hacked, there are orders I didn't make",
                "the message is classified security",
            ),
        ),
        category="security",
        reply="That needs our security team: I'm bringing in a person now.",
        sentiment=-0.4,
    ),
    Escalation(
        "rule",
        10,
        "sentiment",
        "Angry or urgent",
        (
            ("THIS IS THE THIRD TIME MY ORDER IS LATE!!!", ""),
            ("This is ridiculous, I paid for express and nothing arrived", ""),
        ),
        level="angry",
        sentiment=-0.85,
        frustration=0.6,
        signals=("all_caps", "multiple_exclamations", "repeated_issue"),
    ),
    Escalation(
        "rule",
        7,
        "frustration",
        "High frustration",
        (
            ("I've asked this three times already, the tracking still shows nothing", ""),
            ("Still no refund. I keep getting the same answer.", ""),
        ),
        level="frustrated",
        sentiment=-0.45,
        frustration=0.78,
        signals=("repeated_issue",),
    ),
    Escalation("ai_error", 2, "ai_error", "The bot failed to answer"),
    Escalation("api", 30, "api", "Escalated through the API", channel="api"),
]
