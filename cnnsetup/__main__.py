"""`python -m cnnsetup` and the `cnnsetup` console script."""

from __future__ import annotations

import sys


def entrypoint() -> None:
    """Console-script entry point: run `main` on the command line and exit with its status."""
    from cnnsetup.cli import main

    # A console that cannot show a character (ASCII, or GBK for a rare symbol) gets a "?"
    # instead of a crash.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    entrypoint()
