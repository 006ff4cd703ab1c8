"""Small sets of example messages, embedded once per process and embedding model.

- "irrelevant": everyday off-topic questions (weather, sport, trivia, jokes). Classification
  asks whether a message is more like these than like anything the bot knows; the relevance
  gate scores them against each bot's knowledge to learn what "unrelated" scores there.
- "greeting" and "human": paraphrases the rules in classify.py may miss.

Each set also gets a bar, taken from the set itself: how close its members are to each other
(leave-one-out nearest-neighbour cosine, 10th percentile). A message counts as like a set only
when it is at least as close to it as the set's own members are.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from knowledge.embeddings import get_embedder

IRRELEVANT = [
    "what's the weather like tomorrow",
    "will it rain this weekend",
    "tell me a joke",
    "who won the football match last night",
    "what is the capital of France",
    "how do I bake sourdough bread",
    "what's the meaning of life",
    "recommend a good movie to watch",
    "how tall is Mount Everest",
    "who is the president of the United States",
    "solve 2x + 3 = 7",
    "what time is it in Tokyo",
    "write me a poem about cats",
    "how do I fix a flat bicycle tyre",
    "what are the symptoms of the flu",
    "translate good night into German",
    "best places to visit in Italy",
    "how many calories are in a banana",
    "explain quantum physics simply",
    "who wrote Hamlet",
    "do you like music",
    "what's your favourite colour",
    "sing me a song",
    "how old are you",
    "can dogs eat chocolate",
    "what's a good name for a cat",
    "how far is the moon",
    "what's the best pizza topping",
    "let's play a game",
    "I'm bored, entertain me",
]
GREETING = [
    "hello",
    "hi there",
    "hey, good morning",
    "hey, how are you?",
    "thank you so much",
    "thanks, that helped",
    "great, thanks a lot",
    "bye",
    "goodbye, have a nice day",
    "that's all I needed, cheers",
]
HUMAN = [
    "can I talk to a real person",
    "I want to speak to a human",
    "connect me with a support agent",
    "is there someone I can call",
    "let me talk to customer service",
    "get me a representative please",
    "I'd rather chat with an actual person",
    "transfer me to a live agent",
]
SETS = {"irrelevant": IRRELEVANT, "greeting": GREETING, "human": HUMAN}
BAR_QUANTILE = 0.10


@dataclass
class Prototypes:
    vectors: dict[str, np.ndarray]  # set name -> (n, dims), L2-normalised rows
    bars: dict[str, float]

    def similarity(self, vector: np.ndarray) -> dict[str, float]:
        return {name: float((rows @ vector).max()) for name, rows in self.vectors.items()}


_loaded: dict[str, Prototypes] = {}
_lock = threading.Lock()


def prototypes(model: str) -> Prototypes:
    """The sets embedded by `model` (one batch, once per process)."""
    if model not in _loaded:
        with _lock:
            if model not in _loaded:
                texts = [text for members in SETS.values() for text in members]
                rows = get_embedder(model).embed(texts)
                vectors, start = {}, 0
                for name, members in SETS.items():
                    vectors[name] = rows[start : start + len(members)]
                    start += len(members)
                _loaded[model] = Prototypes(vectors, {n: _bar(v) for n, v in vectors.items()})
    return _loaded[model]


def _bar(rows: np.ndarray) -> float:
    sims = rows @ rows.T
    np.fill_diagonal(sims, -1.0)
    return float(np.quantile(sims.max(axis=1), BAR_QUANTILE))
