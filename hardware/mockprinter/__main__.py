"""``python -m mockprinter serve --pty | --tcp PORT [--faults ...]``."""

from mockprinter.cli import main

main()
