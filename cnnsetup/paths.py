"""Where cnnsetup keeps its own small files (onboard progress, locks): the user's cache folder,
never the shared temporary folder and never beside the user's own files."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Optional


def cache_dir(env: Optional[Mapping[str, str]] = None, platform: Optional[str] = None) -> Path:
    """%LOCALAPPDATA%\\cnnsetup on Windows, else $XDG_CACHE_HOME/cnnsetup (~/.cache/cnnsetup)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform == "win32" and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / "cnnsetup"
    home = env.get("USERPROFILE" if platform == "win32" else "HOME") or str(Path.home())
    return Path(env.get("XDG_CACHE_HOME") or Path(home) / ".cache") / "cnnsetup"
