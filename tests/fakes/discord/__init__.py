"""A loopback stand-in for Discord (REST API v10 and gateway) for a real discord.py client.

Manual: README.md in this folder. Facts it relies on about Discord: docs/discord.md.
"""

from tests.fakes.discord.gateway import GatewaySession
from tests.fakes.discord.payloads import (
    EPHEMERAL,
    IS_COMPONENTS_V2,
    LOADING,
    SUPPRESS_EMBEDS,
    make_user,
    snowflake,
)
from tests.fakes.discord.records import (
    Callback,
    Edit,
    Fault,
    InteractionRecord,
    RecordedRequest,
    Rejected,
    UploadedFile,
)
from tests.fakes.discord.server import FakeDiscord

__all__ = [
    "EPHEMERAL",
    "IS_COMPONENTS_V2",
    "LOADING",
    "SUPPRESS_EMBEDS",
    "Callback",
    "Edit",
    "FakeDiscord",
    "Fault",
    "GatewaySession",
    "InteractionRecord",
    "RecordedRequest",
    "Rejected",
    "UploadedFile",
    "make_user",
    "snowflake",
]
