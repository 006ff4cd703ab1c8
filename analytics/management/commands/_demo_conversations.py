"""The demo history's conversations, one at a time (demo_history.py saves them).

A Story is one conversation as it happened: its messages, status moves and escalation, each with
its time. The Generator writes them as the product would have: the statuses in the order the
state machine allows, with the reasons the services write (conversations/services/,
escalation/services.py), the bot's own escalation rules, documents and settings (inactivity
window, reopen window, what "No" does), and agents who answer fast in office hours and late
outside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from analytics.management.commands._demo_script import (
    AGENT_LINES,
    CSAT_COMMENTS,
    CUSTOMER_REPLIES,
    ESCALATIONS,
    OUT_OF_SCOPE,
    TOPICS,
    VAGUE,
    Topic,
)
from bots.models import Bot, User
from conversations.models import Conversation, Message
from conversations.services.common import HANDOFF_MESSAGE
from conversations.services.messages import REOPENED_MESSAGE
from conversations.services.outcomes import OFFER_PERSON_MESSAGE
from escalation.models import EscalationRule, Trigger
from knowledge.models import Chunk, Document

Status = Conversation.Status
Sender = Message.Sender
Outcome = Message.Outcome
Resolution = Conversation.Resolution

# When the demo team works (local hours, Monday..Sunday; None: nobody but the owner on call).
STAFFED = [(8, 20)] * 5 + [(9, 17), None]
# CSAT weights for 1..5: bot-resolved slightly lower than agent-resolved.
CSAT_WEIGHTS = {"bot": [6, 8, 18, 34, 34], "agent": [3, 4, 10, 33, 50]}


@dataclass
class Story:
    """One conversation as it happened: its messages, moves and escalation, with their times."""

    start: datetime
    channel: str
    status: str = Status.AI
    agent: User | None = None
    messages: list = field(default_factory=list)  # (Message, at, reply_to index or None)
    transitions: list = field(default_factory=list)  # (from, to, at, actor, reason)
    escalation: dict | None = None
    fields: dict = field(default_factory=dict)
    last: datetime | None = None

    def say(self, sender, text, at, reply_to=None, **values) -> int:
        self.messages.append((Message(sender=sender, text=text, **values), at, reply_to))
        self.last = max(self.last or at, at)
        return len(self.messages) - 1

    def move(self, to, at, reason, actor=None) -> None:
        self.transitions.append((self.status, to, at, actor, reason))
        self.status = to

    def message(self, index: int) -> Message:
        return self.messages[index][0]


class Generator:
    def __init__(self, *, rng, bot, agents, owner, now, zone):
        self.rng, self.bot, self.agents, self.owner = rng, bot, agents, owner
        self.now, self.zone = now, zone
        self.rules = list(EscalationRule.objects.filter(bot=bot, enabled=True).order_by("position"))
        self.documents = {d.title.lower(): d for d in Document.objects.filter(bot=bot)}
        chunks = Chunk.objects.filter(bot=bot).order_by("document_id", "position")
        self.first_chunk = {}
        for document_id, chunk_id in chunks.values_list("document_id", "id"):
            self.first_chunk.setdefault(document_id, chunk_id)

    # --- Small helpers ------------------------------------------------------------------------
    def secs(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=self.rng.uniform(low, high))

    def rule(self, trigger: str, category: str = "") -> EscalationRule | None:
        for rule in self.rules:
            if rule.trigger == trigger and (not category or category in rule.category_list):
                return rule
        return None

    def citations(self, topic: Topic) -> list[dict]:
        found = []
        for title in topic.sources:
            document = self.documents.get(title.lower())
            if document is not None:
                found.append(
                    {
                        "n": len(found) + 1,
                        "chunk_id": self.first_chunk.get(document.pk),
                        "document_id": document.pk,
                        "title": document.title,
                        "url": document.url,
                    }
                )
        return found

    @property
    def asks_then_offers(self) -> bool:
        """A "No" to "Did that answer your question?" offers a person (else it hands off)."""
        return self.bot.ask_if_answered and self.bot.not_answered == Bot.NotAnswered.OFFER

    def can(self, plan) -> bool:
        """Whether this bot's settings and rules let a conversation reach people this way."""
        if plan.kind == "no_then_person":
            return self.asks_then_offers
        if plan.kind == "not_answered":
            return self.bot.ask_if_answered and not self.asks_then_offers
        if plan.kind == "rule" and plan.trigger != "human_request":
            # Without its rule a category, sentiment or frustration hands nothing off (a
            # request for a person does: the pipeline itself hands it off).
            return self.rule(plan.trigger, plan.category) is not None
        return True

    def topic(self) -> Topic:
        return self.rng.choices(TOPICS, [t.weight for t in TOPICS])[0]

    def customer_writes(self, s: Story, text: str, at: datetime, **values) -> int:
        """The customer's message, with the move it makes (README: awaiting -> back to who
        holds it; resolved -> reopened, with the bot if the bot resolved it, else the queue)."""
        reopened = s.status == Status.RESOLVED
        if s.status == Status.AWAITING:
            s.move(Status.ACTIVE if s.agent else Status.AI, at, "The customer replied")
        elif reopened:
            by_bot = s.fields["resolution"] == Resolution.BOT
            s.move(Status.AI if by_bot else Status.WAITING, at, "reopened")
            s.fields["reopened_count"] = s.fields.get("reopened_count", 0) + 1
            s.fields.update(resolution="", resolved_at=None)
            s.agent = None
        index = s.say(Sender.USER, text, at, **values)
        if reopened:
            s.say(Sender.SYSTEM, REOPENED_MESSAGE, at + timedelta(seconds=1))
        return index

    def bot_turn(self, s: Story, at: datetime, topic: Topic, outcome=Outcome.ANSWERED, ask=None):
        """A customer question (`ask`, else one of the topic's) and the bot's reply with
        `outcome`; returns (the reply's time, the question's index, the reply's index)."""
        rng = self.rng
        user = self.customer_writes(s, ask or rng.choice(topic.asks), at, sentiment=0.0)
        at = at + self.secs(2, 7)
        citations, confidence, extras = [], None, {}
        trace = {"answer_method": "extractive", "outcome": outcome, "category": topic.category}
        if topic.intent and not ask:
            trace["intent"] = {"tag": topic.intent, "accepted": True}
        text = topic.answer
        if outcome == Outcome.ANSWERED:
            citations, confidence = self.citations(topic), round(rng.uniform(0.62, 0.94), 2)
            extras["ask_answered"] = self.bot.ask_if_answered
        elif outcome == Outcome.LOW_CONFIDENCE:
            citations, confidence = self.citations(topic), round(rng.uniform(0.36, 0.5), 2)
            text = "I'm not completely sure, but this may help: " + topic.answer
        elif outcome == Outcome.HANDOFF_PROPOSED:
            citations, confidence = self.citations(topic), round(rng.uniform(0.12, 0.34), 2)
            text = "I may not have the full answer: " + topic.answer
            if ask:  # not the topic's own question: no answer of the topic to give
                text, citations = "I'm not sure I can sort this out myself.", []
                trace["category"] = "high_stakes"
            extras["offer_human"] = True
        elif outcome == Outcome.CLARIFIED:
            text = "Could you tell me a bit more? Is it about one of these?"
            extras["suggestions"] = [t.asks[0] for t in rng.sample(TOPICS, 3)]
            trace["category"] = "unclear"
        elif outcome == Outcome.DEFLECTED:
            text = "I can only help with Acme orders, shipping, returns, payments and accounts."
            trace["category"] = "out_of_scope"
        reply = s.say(
            Sender.AI,
            text,
            at,
            reply_to=user,
            outcome=outcome,
            confidence=confidence,
            citations=citations,
            extras=extras,
            trace=trace,
        )
        if outcome != Outcome.HANDOFF:
            s.move(Status.AWAITING, at, "The bot answered")
        return at, user, reply

    # --- One conversation ---------------------------------------------------------------------
    def conversation(self, start: datetime, channel: str) -> Story | None:
        rng = self.rng
        s = Story(start=start, channel=channel)
        kind = rng.choices(["yes", "idle", "abandoned", "escalated"], [36, 21, 15, 28])[0]
        at = start
        # Some customers ask one or two things first and carry on.
        for _ in range(rng.choices([0, 1, 2], [62, 30, 8])[0]):
            at, _, reply = self.bot_turn(s, at, self.topic())
            if rng.random() < 0.15:
                s.message(reply).feedback = 1
            at += self.secs(20, 150)
        if kind in ("yes", "idle"):
            self.bot_resolves(s, at, confirm=kind == "yes")
        elif kind == "abandoned":
            self.abandons(s, at)
        else:
            self.escalates(s, at)
        self.close_after_window(s)
        if s.last > self.now or any(t[2] > self.now for t in s.transitions):
            return None  # it would still be going on: not history yet
        return s

    def bot_resolves(self, s: Story, at: datetime, *, confirm: bool) -> None:
        rng = self.rng
        topic = self.topic()
        if not self.citations(topic):
            self.abandons(s, at)  # without sources the bot cannot resolve it (README)
            return
        at, _, reply = self.bot_turn(s, at, topic)
        if rng.random() < 0.18:
            s.message(reply).feedback = 1
        if confirm and self.bot.ask_if_answered:
            at += self.secs(8, 90)
            s.message(reply).confirmed = True
            s.move(Status.RESOLVED, at, "The customer said the answer helped")
            s.last = at
        else:
            at += timedelta(minutes=self.bot.inactivity_minutes, seconds=rng.uniform(5, 55))
            minutes = self.bot.inactivity_minutes
            s.move(
                Status.RESOLVED, at, f"No reply for {minutes} minutes after an answer with sources"
            )
        s.fields.update(resolution=Resolution.BOT, resolved_at=at)
        self.rate(s, at, "bot", 0.45 if confirm else 0.08)
        if confirm and rng.random() < 0.05:
            # Back with a follow-up within the reopen window: reopened, answered, resolved again.
            at = max(at, s.last) + timedelta(minutes=rng.uniform(10, 300))
            at, _, reply = self.bot_turn(s, at, topic)
            at += self.secs(8, 60)
            s.message(reply).confirmed = True
            s.move(Status.RESOLVED, at, "The customer said the answer helped")
            s.last = at
            s.fields.update(resolution=Resolution.BOT, resolved_at=at)

    def abandons(self, s: Story, at: datetime) -> None:
        rng = self.rng
        way = rng.choices(
            ["clarified", "deflected", "hedged", "offer", "no", "thumbs"], [22, 16, 18, 16, 14, 14]
        )[0]
        topic = self.topic()
        if way == "clarified":
            at, _, _ = self.bot_turn(s, at, topic, Outcome.CLARIFIED, ask=rng.choice(VAGUE))
        elif way == "deflected":
            at, _, _ = self.bot_turn(s, at, topic, Outcome.DEFLECTED, ask=rng.choice(OUT_OF_SCOPE))
        elif way == "hedged":
            at, _, reply = self.bot_turn(s, at, topic, Outcome.LOW_CONFIDENCE)
            if rng.random() < 0.4:
                s.message(reply).feedback = -1
        elif way == "offer":
            at, _, _ = self.bot_turn(s, at, topic, Outcome.HANDOFF_PROPOSED)
        else:
            at, _, reply = self.bot_turn(s, at, topic)
            if way == "no" and self.asks_then_offers:
                at += self.secs(8, 60)
                s.message(reply).confirmed = False
                s.say(Sender.SYSTEM, OFFER_PERSON_MESSAGE, at, extras={"offer_human": True})
            else:
                s.message(reply).feedback = -1
        self.end_idle(s, at)

    def end_idle(self, s: Story, at: datetime) -> None:
        """The inactivity sweep closes it as abandoned (no resolving answer, or a "No")."""
        minutes = self.bot.inactivity_minutes
        at = at + timedelta(minutes=minutes, seconds=self.rng.uniform(5, 55))
        s.move(Status.CLOSED, at, f"No reply for {minutes} minutes without a resolving answer")
        s.fields.update(resolution=Resolution.ABANDONED, resolved_at=at)

    def escalates(self, s: Story, at: datetime) -> None:
        rng = self.rng
        choices = [e for e in ESCALATIONS if e.channel in ("", s.channel) and self.can(e)]
        plan = rng.choices(choices, [e.weight for e in choices])[0]
        topic = self.topic()
        message, manual, level = None, False, ""
        if plan.kind in ("offer_then_person", "no_then_person"):
            if plan.kind == "offer_then_person":
                at, _, _ = self.bot_turn(s, at, topic, Outcome.HANDOFF_PROPOSED, ask=plan.pick(rng))
            else:
                at, _, reply = self.bot_turn(s, at, topic)
                at += self.secs(8, 60)
                s.message(reply).confirmed = False
                s.say(Sender.SYSTEM, OFFER_PERSON_MESSAGE, at, extras={"offer_human": True})
            at += self.secs(5, 40)  # the "Talk to a person" button: no message
            rule, manual = self.rule(Trigger.HUMAN_REQUEST), True
            reason = "The customer asked for a person."
        elif plan.kind == "not_answered":
            at, user, reply = self.bot_turn(s, at, topic)
            at += self.secs(8, 60)
            s.message(reply).confirmed = False
            rule, message = None, user
            reason = "The customer said the bot's answer did not help."
        elif plan.kind == "api":
            at, _, _ = self.bot_turn(s, at, topic)
            at += self.secs(30, 240)
            rule, manual, reason = None, True, "Escalated through the API."
        elif plan.kind == "ai_error":
            user = self.customer_writes(s, rng.choice(topic.asks), at)
            at += self.secs(20, 40)
            s.say(
                Sender.AI,
                "",
                at,
                reply_to=user,
                state=Message.State.FAILED,
                trace={"error": "LLM timeout"},
            )
            rule, message = self.rule(Trigger.AI_ERROR), user
            reason = "The bot could not answer (an error on our side)."
        else:
            text = plan.pick(rng)
            level = plan.level
            values = {"sentiment": plan.sentiment, "signals": list(plan.signals)}
            if level:
                values["trace"] = {"escalation": {"level": level, "frustration": plan.frustration}}
            user = self.customer_writes(s, text, at, **values)
            at += self.secs(2, 6)
            s.say(
                Sender.AI,
                plan.reply,
                at,
                reply_to=user,
                outcome=Outcome.HANDOFF,
                trace={"outcome": "handoff", "category": plan.category or "support"},
            )
            rule, message = self.rule(plan.trigger, plan.category), user
            reason = plan.reason(rule, text)
            s.fields.update(
                sentiment=plan.sentiment, sentiment_level=level, frustration=plan.frustration
            )
        trigger = plan.trigger
        priority = rule.priority if rule else Conversation.Priority.MEDIUM
        queue = rule.queue if rule else Conversation.Queue.TIER1
        s.move(Status.WAITING, at, reason)
        s.say(Sender.SYSTEM, HANDOFF_MESSAGE, at + timedelta(seconds=1))
        s.fields.update(handoff_at=at, handoff_reason=reason[:200], priority=priority, queue=queue)
        s.escalation = {
            "trigger": trigger,
            "rule": rule,
            "reason": reason[:200],
            "manual": manual,
            "priority": priority,
            "queue": queue,
            "triggered_at": at,
            "message": message,
        }
        self.agent_handles(s, at)

    def agent_handles(self, s: Story, at: datetime) -> None:
        """Claimed after a wait that depends on the team's hours, answered, resolved."""
        rng = self.rng
        at, agent = self.claim_time(at)
        s.agent = agent
        name = agent.display_name
        s.move(Status.ACTIVE, at, f"Claimed by {name}", actor=agent)
        s.say(Sender.SYSTEM, f"{name} joined the chat", at)
        lines = list(AGENT_LINES)
        rng.shuffle(lines)
        for round_ in range(rng.choices([1, 2, 3], [45, 40, 15])[0]):
            if round_:
                at += self.secs(40, 300)
                self.customer_writes(s, rng.choice(CUSTOMER_REPLIES), at)
            at += self.secs(25, 200)
            s.say(Sender.AGENT, lines[round_], at, agent=agent)
            s.escalation.setdefault("first_response_at", at)
            s.move(Status.AWAITING, at, "The agent replied", actor=agent)
        at += self.secs(60, 900)
        s.move(Status.RESOLVED, at, f"Resolved by {name}", actor=agent)
        s.fields.update(resolution=Resolution.AGENT, resolved_at=at)
        s.escalation["resolved_at"] = at
        self.rate(s, at, "agent", 0.55)
        if rng.random() < 0.04:
            # Back within the window: into the queue again, claimed, answered, resolved.
            at += timedelta(minutes=rng.uniform(30, 360))
            self.customer_writes(s, "Sorry, it happened again with my next order.", at)
            at, agent = self.claim_time(at)
            s.agent = agent
            s.move(Status.ACTIVE, at, f"Claimed by {agent.display_name}", actor=agent)
            s.say(Sender.SYSTEM, f"{agent.display_name} joined the chat", at)
            at += self.secs(30, 180)
            s.say(Sender.AGENT, rng.choice(AGENT_LINES), at, agent=agent)
            s.move(Status.AWAITING, at, "The agent replied", actor=agent)
            at += self.secs(60, 600)
            s.move(Status.RESOLVED, at, f"Resolved by {agent.display_name}", actor=agent)
            s.fields.update(resolution=Resolution.AGENT, resolved_at=at)

    def claim_time(self, at: datetime) -> tuple[datetime, User]:
        rng = self.rng
        local = at.astimezone(self.zone)
        hours = STAFFED[local.weekday()]
        if hours and hours[0] <= local.hour < hours[1]:
            wait = min(max(rng.lognormvariate(5.0, 0.8), 20), 2400)  # median ~2.5 min
            return at + timedelta(seconds=wait), rng.choices(self.agents, self.agent_weights)[0]
        opening = self.next_opening(local)
        if opening is not None and rng.random() < 0.6 and opening + timedelta(hours=1) < self.now:
            return opening + self.secs(60, 1500), rng.choices(self.agents, self.agent_weights)[0]
        return at + self.secs(600, 4500), self.owner  # the owner on call

    def next_opening(self, local: datetime) -> datetime | None:
        for ahead in range(0, 3):
            day = local.date() + timedelta(days=ahead)
            hours = STAFFED[day.weekday()]
            if hours:
                opening = datetime.combine(day, time(hours[0]), tzinfo=self.zone)
                if opening > local:
                    return opening
        return None

    @property
    def agent_weights(self) -> list[int]:
        return [3 if a != self.owner else 1 for a in self.agents]

    def rate(self, s: Story, at: datetime, who: str, chance: float) -> None:
        rng = self.rng
        if s.fields.get("csat") or rng.random() >= chance:
            return
        score = rng.choices(range(1, 6), CSAT_WEIGHTS[who])[0]
        comment = rng.choice(CSAT_COMMENTS[who][score]) if rng.random() < 0.3 else ""
        s.fields.update(csat=score, csat_comment=comment, csat_at=at + self.secs(10, 120))
        s.last = max(s.last, s.fields["csat_at"])

    def close_after_window(self, s: Story) -> None:
        """The worker closes a resolved conversation past the reopen window, keeping who
        resolved it; one resolved within the last window is still open to a reopen."""
        if s.status != Status.RESOLVED:
            return
        hours = self.bot.reopen_hours
        at = s.fields["resolved_at"] + timedelta(hours=hours, seconds=self.rng.uniform(5, 60))
        if at < self.now:
            s.move(Status.CLOSED, at, f"Not reopened within {hours} hours")
