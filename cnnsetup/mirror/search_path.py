"""Every file conda reads its configuration from, in conda's order.

conda's search path (conda/base/constants.py, SEARCH_PATH): system folders, the base install
($CONDA_ROOT), $XDG_CONFIG_HOME/conda, ~/.config/conda, ~/.conda, ~/.condarc, the active
environment ($CONDA_PREFIX), then $CONDARC. Each folder contributes `.condarc`, `condarc` and the
`*.yml` / `*.yaml` files of its `condarc.d/`, sorted by name. A path conda reaches twice is read
once. Later files win for single values; lists and maps merge (see merge.py).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from cnnsetup.i18n import _

CONDARC_NAMES = (".condarc", "condarc")
YAML_SUFFIXES = (".yml", ".yaml")

UNIX_SYSTEM_DIRS = ("/etc/conda", "/var/lib/conda")
WINDOWS_SYSTEM_DIRS = ("C:/ProgramData/conda",)

# Where a candidate comes from; `origin_label` turns these codes into words.
SYSTEM = "system"
CONDA_ROOT = "CONDA_ROOT"
XDG = "XDG_CONFIG_HOME"
USER_CONFIG = "user_config"
USER_CONDA = "user_conda"
USER = "user"
CONDA_PREFIX = "CONDA_PREFIX"
CONDARC = "CONDARC"


@dataclass(frozen=True)
class ConfigFile:
    """One place conda looks for configuration.

    `path` is a file, or (kind "dir") a `condarc.d/` folder that does not exist or holds no YAML
    file. `ignored` says why conda skips an existing path it was pointed at ("" when it reads it).
    """

    path: str
    origin: str
    exists: bool
    kind: str = "file"
    ignored: str = ""

    @property
    def readable(self) -> bool:
        """True when conda reads this file (it exists, is a file, and is not ignored)."""
        return self.exists and self.kind == "file" and not self.ignored

    def describe(self) -> str:
        return origin_label(self.origin)


def origin_label(origin: str) -> str:
    """Words for where a configuration file comes from, e.g. "your user file (~/.condarc)"."""
    labels = {
        SYSTEM: _("system-wide configuration"),
        CONDA_ROOT: _("the conda installation (base)"),
        XDG: _("the XDG configuration folder ({var})").format(var="$XDG_CONFIG_HOME"),
        USER_CONFIG: _("your configuration folder ({path})").format(path="~/.config/conda"),
        USER_CONDA: _("your conda folder ({path})").format(path="~/.conda"),
        USER: _("your user file ({path})").format(path="~/.condarc"),
        CONDA_PREFIX: _("the active environment ({var})").format(var="$CONDA_PREFIX"),
        CONDARC: _("the file named by {var}").format(var="$CONDARC"),
    }
    return labels.get(origin, origin)


def _is_windows(platform: str) -> bool:
    return platform.startswith("win")


def user_condarc(home: str, platform: Optional[str] = None) -> str:
    """The file `conda config` writes by default: `~/.condarc` (`%USERPROFILE%\\.condarc`)."""
    return os.path.join(home, ".condarc")


def _folder_candidates(folder: str, origin: str) -> list[ConfigFile]:
    found = [
        ConfigFile(os.path.join(folder, name), origin, os.path.isfile(os.path.join(folder, name)))
        for name in CONDARC_NAMES
    ]
    found += _dir_candidates(os.path.join(folder, "condarc.d"), origin)
    return found


def _dir_candidates(folder: str, origin: str) -> list[ConfigFile]:
    """The YAML files of a `condarc.d/` folder in name order, or the folder itself when none."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    files = [
        ConfigFile(os.path.join(folder, name), origin, True)
        for name in names
        if name.endswith(YAML_SUFFIXES) and os.path.isfile(os.path.join(folder, name))
    ]
    return files or [ConfigFile(folder, origin, False, kind="dir")]


def _expand_user(path: str, home: str) -> str:
    if path == "~" or path.startswith(("~/", "~\\")):
        return home + path[1:]
    return path


def _condarc_candidates(value: str, home: str) -> list[ConfigFile]:
    """$CONDARC: read only when its name is `.condarc`/`condarc` or ends in .yml/.yaml (a folder
    contributes its YAML files); any other name is silently skipped by conda."""
    path = _expand_user(value, home)
    if os.path.isdir(path):
        return [c for c in _dir_candidates(path, CONDARC) if c.kind == "file"] or [
            ConfigFile(path, CONDARC, False, kind="dir")
        ]
    exists = os.path.isfile(path)
    name = os.path.basename(path)
    if name in CONDARC_NAMES or name.endswith(YAML_SUFFIXES):
        return [ConfigFile(path, CONDARC, exists)]
    return [ConfigFile(path, CONDARC, exists, ignored="name")]


def config_files(
    env: Optional[Mapping[str, str]] = None,
    home: Optional[str] = None,
    platform: Optional[str] = None,
    conda_root: Optional[str] = None,
    active_prefix: Optional[str] = None,
    system_dirs: Optional[Sequence[str]] = None,
) -> list[ConfigFile]:
    """Every configuration file conda would read on this machine, in conda's order.

    `conda_root` is the base install (None: $CONDA_ROOT when set, else skipped); `active_prefix`
    the active environment (None: $CONDA_PREFIX). Paths reached twice appear once, first place.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if home is None:
        home = (env.get("USERPROFILE") if _is_windows(platform) else None) or env.get("HOME") or ""
    if system_dirs is None:
        system_dirs = WINDOWS_SYSTEM_DIRS if _is_windows(platform) else UNIX_SYSTEM_DIRS
    conda_root = conda_root or env.get("CONDA_ROOT") or None
    active_prefix = active_prefix if active_prefix is not None else env.get("CONDA_PREFIX") or None

    candidates: list[ConfigFile] = []
    for folder in system_dirs:
        candidates += _folder_candidates(folder, SYSTEM)
    if conda_root:
        candidates += _folder_candidates(conda_root, CONDA_ROOT)
    if env.get("XDG_CONFIG_HOME"):
        candidates += _folder_candidates(os.path.join(env["XDG_CONFIG_HOME"], "conda"), XDG)
    if home:
        candidates += _folder_candidates(os.path.join(home, ".config", "conda"), USER_CONFIG)
        candidates += _folder_candidates(os.path.join(home, ".conda"), USER_CONDA)
        candidates.append(ConfigFile(user_condarc(home), USER, os.path.isfile(user_condarc(home))))
    if active_prefix:
        candidates += _folder_candidates(active_prefix, CONDA_PREFIX)
    if env.get("CONDARC"):
        candidates += _condarc_candidates(env["CONDARC"], home)

    unique: list[ConfigFile] = []
    seen: set[str] = set()
    for candidate in candidates:
        key = same_path_key(candidate.path)
        if key not in seen:
            seen.add(key)
            unique.append(candidate)
    return unique


def same_path_key(path: str) -> str:
    """A key under which two spellings of one path compare equal."""
    normalized = os.path.normpath(os.path.abspath(path)) if path else path
    return os.path.normcase(normalized)
