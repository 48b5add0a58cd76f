"""A stand-in `conda` for tests: a small Python program that behaves like conda for
`clean -i -y --json` (removes `<pkgs>/cache` where `urls.txt` marks a writable package cache) and
`info --json` (channels and config files from the configuration files conda would read), plus
variants that hang, fail, or print garbage.

Its `info` reads the files with cnnsetup's merge, which is itself checked against real conda's
output in tests/test_merge_golden.py; tests here check what cnnsetup does with conda's answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from tests.conftest import REPO_ROOT, write_program

CONDA_VERSION = "26.7.1"

_BODY = r'''
import json, os, shutil, sys, time
SETTINGS = json.loads(%(settings)r)
sys.path.insert(0, SETTINGS["repo"])
args = sys.argv[1:]
if SETTINGS["log"]:
    with open(SETTINGS["log"], "a", encoding="utf-8") as log:
        log.write(json.dumps(args) + "\n")
command = args[0] if args else ""
mode = SETTINGS["modes"].get(command, SETTINGS["modes"].get("*", "ok"))
if mode == "hang":
    time.sleep(120)
if mode == "garbage":
    print("Proceed ([y]/n)? this is not JSON")
    sys.exit(0)
if mode == "fail_text":
    sys.stderr.write("CondaError: something went wrong\n")
    sys.exit(1)
if mode == "fail":
    print(json.dumps({"error": SETTINGS["error"], "exception_name": SETTINGS["exception_name"],
                      "exception_type": "<class 'Exception'>"}))
    sys.exit(1)
if command == "clean":
    removed = []
    for pkgs in SETTINGS["pkgs_dirs"]:
        cache = os.path.join(pkgs, "cache")
        if os.path.isfile(os.path.join(pkgs, "urls.txt")) and os.path.isdir(cache):
            shutil.rmtree(cache)
            removed.append(cache)
    print(json.dumps({"success": True, "index_cache": {"files": removed}}))
    sys.exit(0)
if command == "info":
    if SETTINGS["info"] is not None:
        print(json.dumps(SETTINGS["info"]))
        sys.exit(0)
    from cnnsetup.mirror.merge import compute
    effective = compute(env=os.environ, conda_root=SETTINGS["root_prefix"],
                        system_dirs=SETTINGS["system_dirs"], platform="linux", subdir="linux-64")
    if effective.error:
        print(json.dumps({"error": effective.error.describe(),
                          "exception_name": effective.error.name}))
        sys.exit(1)
    print(json.dumps({
        "conda_version": SETTINGS["version"], "platform": "linux-64",
        "channels": effective.channel_urls, "config_files": effective.config_files,
        "user_rc_path": os.path.join(os.environ.get("HOME", ""), ".condarc"),
        "sys_rc_path": os.path.join(SETTINGS["root_prefix"] or "", ".condarc"),
        "root_prefix": SETTINGS["root_prefix"], "active_prefix": os.environ.get("CONDA_PREFIX"),
        "pkgs_dirs": SETTINGS["pkgs_dirs"], "offline": False,
    }))
    sys.exit(0)
sys.stderr.write("stand-in conda: unsupported command %%r\n" %% (args,))
sys.exit(2)
'''


def write_conda(
    path: Path,
    *,
    modes: Optional[Mapping[str, str]] = None,
    root_prefix: Optional[Union[str, Path]] = None,
    pkgs_dirs: Sequence[Union[str, Path]] = (),
    system_dirs: Sequence[str] = (),
    log: Optional[Path] = None,
    info: Optional[dict] = None,
    error: str = "Ignoring configuration file: ParserError",
    exception_name: str = "ParserError",
    version: str = CONDA_VERSION,
) -> Path:
    """Write a stand-in conda at `path`. `modes` maps a subcommand ("clean", "info", or "*")
    to ok / hang / fail / fail_text / garbage; `info` replaces the computed `info --json`."""
    settings = {
        "repo": str(REPO_ROOT),
        "modes": dict(modes or {}),
        "root_prefix": str(root_prefix) if root_prefix else None,
        "pkgs_dirs": [str(p) for p in pkgs_dirs],
        "system_dirs": list(system_dirs),
        "log": str(log) if log else None,
        "info": info,
        "error": error,
        "exception_name": exception_name,
        "version": version,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_program(path, _BODY % {"settings": json.dumps(settings)})


def make_install(base: Path, **kwargs) -> Path:
    """A conda install folder `base` with `bin/conda` (the stand-in) and a package cache holding
    `urls.txt` and an index `cache/`; returns the executable."""
    pkgs = base / "pkgs"
    (pkgs / "cache").mkdir(parents=True, exist_ok=True)
    (pkgs / "cache" / "repodata.json").write_text("{}", encoding="utf-8")
    (pkgs / "urls.txt").write_text("", encoding="utf-8")
    kwargs.setdefault("pkgs_dirs", [pkgs])
    kwargs.setdefault("root_prefix", base)
    return write_conda(base / "bin" / "conda", **kwargs)


def calls(log: Path) -> list[list[str]]:
    """The argument lists the stand-in was called with, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


TUNA = "https://mirrors.tuna.tsinghua.edu.cn/anaconda"
TUNA_CONDARC = f"""channels:
  - defaults
show_channel_urls: true
default_channels:
  - {TUNA}/pkgs/main
  - {TUNA}/pkgs/r
custom_channels:
  conda-forge: {TUNA}/cloud
  pytorch: {TUNA}/cloud
"""
