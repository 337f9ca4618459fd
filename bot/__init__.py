"""nekocord: a Discord bot for nekos.best reaction GIFs and images."""

__version__ = "0.1.0"
