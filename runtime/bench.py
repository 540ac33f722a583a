"""``python -m runtime.bench SOURCE ...``: the benchmark command (runtime/cli/bench.py)."""

import sys

from runtime.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
