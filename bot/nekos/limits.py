"""The limits of the nekos.best v2 API, declared once: the client, the bot's checks, its
command options and its button ids all follow them."""

from __future__ import annotations

import re

__all__ = [
    "CATEGORY_NAME",
    "CATEGORY_NAME_MAX",
    "CATEGORY_NAME_PATTERN",
    "MAX_AMOUNT",
    "QUERY_MAX",
    "QUERY_MIN",
]

CATEGORY_NAME_MAX = 32  # the longest known name is 9; 32 keeps button ids within Discord's 100
CATEGORY_NAME_PATTERN = rf"[a-z0-9_-]{{1,{CATEGORY_NAME_MAX}}}"  # to embed in larger patterns
CATEGORY_NAME = re.compile(CATEGORY_NAME_PATTERN)  # use with `fullmatch`
MAX_AMOUNT = 20  # results per nekos.best request
QUERY_MIN, QUERY_MAX = 3, 150  # characters of a /search query, once trimmed
