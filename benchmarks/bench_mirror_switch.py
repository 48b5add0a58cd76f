"""How long `cnnsetup mirror tsinghua --dry-run --no-clean` takes, against the bare cost of
importing what it needs (`python -c "import click, ruamel.yaml"`). Goal: ratio <= 2.0.

Run: python benchmarks/bench_mirror_switch.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import PYTHON, cnnsetup_env, compare, report  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / ".condarc").write_text(
            "# a typical student file\nchannels:\n  - defaults\nshow_channel_urls: true\n",
            encoding="utf-8",
        )
        env = cnnsetup_env(Path(home))
        subject, baseline = compare(
            [PYTHON, "-m", "cnnsetup", "mirror", "tsinghua", "--dry-run", "--no-clean"],
            [PYTHON, "-c", "import click, ruamel.yaml"],
            env=env,
        )
    ok = report("cnnsetup mirror tsinghua --dry-run --no-clean", subject,
                'python -c "import click, ruamel.yaml"', baseline, goal=2.0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
