"""What differs between sequence and token classification, in one place: the tag scheme and
entity spans (``tagging``), how token data is read (``token_data``), and how sub-word
predictions become word predictions (``alignment``). Nothing heavy is imported here."""

from __future__ import annotations

SEQUENCE = "text-classification"
TOKEN = "token-classification"
TASKS = (SEQUENCE, TOKEN)
