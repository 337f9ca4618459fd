"""Shared test setup. Every test has a timeout (pyproject: pytest-timeout); servers bind port 0."""
