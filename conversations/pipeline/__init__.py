"""The bot's answering pipeline (run.py has the overview).

from conversations.pipeline import Turn, run

for event in run(Turn(bot=bot, text="How long does shipping take?", history=[])):
    ...  # {"type": "token", "text": ...} events, then one {"type": "final", ...}
"""

from conversations.pipeline.context import Turn
from conversations.pipeline.run import run

__all__ = ["Turn", "run"]
