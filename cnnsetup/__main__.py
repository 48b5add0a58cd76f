"""`python -m cnnsetup` and the `cnnsetup` console script."""

from __future__ import annotations

import sys


def entrypoint() -> None:
    """Console-script entry point: run `main` on the command line and exit with its status."""
    from cnnsetup.cli import main

    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    entrypoint()
