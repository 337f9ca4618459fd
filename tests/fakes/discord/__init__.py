"""A loopback stand-in for Discord (REST API v10 and gateway) for a real discord.py client.

Manual: README.md in this folder. Facts it relies on about Discord: docs/discord.md.
The record types (``Callback``, ``Edit``, ``Fault``…) are in ``tests.fakes.discord.records``.
"""

from tests.fakes.discord.payloads import EPHEMERAL, LOADING, make_user, snowflake
from tests.fakes.discord.records import InteractionRecord
from tests.fakes.discord.server import FakeDiscord

__all__ = ["EPHEMERAL", "LOADING", "FakeDiscord", "InteractionRecord", "make_user", "snowflake"]
