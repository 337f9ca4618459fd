"""The speed benchmark: `python -m bench` (see BENCHMARKS.md).

Three bots, each its own process, against the loopback stand-ins (tests/fakes) run by the
driver: the floor (`bench.floor`: a minimal discord.py bot that answers with a constant embed),
a naive bot (`bench.naive`: one nekos.best request per command) and nekocord (`python -m bot`).
"""
