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


def ensure_dir(path: Path) -> Path:
    """Create `path` and its missing parents. Run as root (`sudo -E` in a user's home), each
    folder created gets the owner and group of the nearest folder that already existed, so the
    user's cache stays the user's."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    if missing and hasattr(os, "geteuid") and os.geteuid() == 0:
        info = os.stat(probe)
        for folder in missing:
            if (info.st_uid, info.st_gid) != (0, 0):
                os.chown(folder, info.st_uid, info.st_gid)
    return path
