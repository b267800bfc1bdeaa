"""`python -m ovh_byoi.cli` works where the console script is not on PATH (benchmarks rely on it)."""

from .app import main

main()
