"""The README's configuration table and `.env.example`, rendered from `bot.config`'s
declarations: `python -m bot.config_docs readme-table|env-example` (a test keeps both files
equal to the rendering)."""

from __future__ import annotations

import sys

from bot.config import SETTINGS


def readme_table() -> str:
    """The configuration table of README.md."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    lines += [f"| `{s.name}` | {s.default_cell} | {s.help} |" for s in SETTINGS]
    return "\n".join(lines) + "\n"


def env_example() -> str:
    """The whole of `.env.example`."""
    required = ", ".join(s.name for s in SETTINGS if s.required is not None)
    lines = [
        f"# nekocord configuration. Copy to .env and fill in {required}; "
        "everything else is optional.",
        "# The README's configuration table explains each setting.",
    ]
    for s in SETTINGS:
        lines += ["", f"# {s.help}" + (" Required." if s.required is not None else "")]
        if s.shown is not None:
            lines.append(f"# Default: {s.shown.strip('()`')}")
        literal = s.default if isinstance(s.default, str) else ""
        lines.append(f"{'' if s.required is not None else '# '}{s.name}={literal}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    renderings = {"readme-table": readme_table, "env-example": env_example}
    if sys.argv[1:2] and sys.argv[1] in renderings:
        sys.stdout.write(renderings[sys.argv[1]]())
    else:
        sys.exit(f"usage: python -m bot.config_docs {'|'.join(renderings)}")
