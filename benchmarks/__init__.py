"""The performance suite: `.venv/bin/python -m benchmarks` prints each figure and writes RESULTS.md."""
