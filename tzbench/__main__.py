"""``python -m tzbench`` (and ``torchrun -m tzbench``) runs the CLI."""

from tzbench.cli import main

main()
