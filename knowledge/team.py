"""Answers from the team: the FAQs agents save from their replies ("Save as an FAQ").

Each bot has at most one team source (KnowledgeSource.Kind.TEAM). Its content is not a file but
the bot's TeamAnswer rows: a sync writes them out as an FAQ spreadsheet and reads that with the
same parser as an uploaded one, so a team answer is chunked, embedded, indexed and tuned exactly
like any FAQ, and cited the same way.
"""

from __future__ import annotations

import csv
import io

from bots.models import Bot
from knowledge.models import KnowledgeSource, TeamAnswer
from knowledge.parsers import ParsedDocument, parse_upload

TEAM_SOURCE_NAME = KnowledgeSource.Kind.TEAM.label
QUESTION_MAX = 300
ANSWER_MAX = 5000


def team_csv(*, bot: Bot) -> bytes:
    """The bot's team answers as an FAQ spreadsheet (the header faq_csv expects)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", "answer"])
    for question, answer in (
        TeamAnswer.objects.filter(bot=bot).order_by("id").values_list("question", "answer")
    ):
        writer.writerow([question, answer])
    return out.getvalue().encode()


def team_documents(source: KnowledgeSource) -> list[ParsedDocument]:
    """What a sync of the team source applies: its answers as FAQ documents (none left: none,
    and the sync removes what was there)."""
    if not TeamAnswer.objects.filter(bot_id=source.bot_id).exists():
        return []
    return parse_upload(
        filename="answers-from-the-team.csv", data=team_csv(bot=source.bot), format="faq_csv"
    )
