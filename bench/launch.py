"""`python -m bench.launch <module>`: run a bot's `__main__` with the variant tags applied
(BENCH_LOOP, BENCH_JSON; see bench.variants) before any of its code is imported."""

from __future__ import annotations

import runpy
import sys

from bench.variants import apply_in_child

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m bench.launch <module> [args...]")
    apply_in_child()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
