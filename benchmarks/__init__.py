"""The performance suite: `.venv/bin/python -m benchmarks` prints each figure and writes RESULTS.md."""

import sys
from pathlib import Path

# The benchmarks drive real provider processes and the real Pulumi CLI with the test suite's kit.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
