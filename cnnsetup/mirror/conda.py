"""Every call to conda: finding it, `conda clean -i`, `conda info --json`.

(A first version: finding conda on PATH or CONDA_EXE, and the two calls. The interface -- the
names and fields below -- is what the rest of cnnsetup relies on.)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from cnnsetup.run import run

CLEAN_TIMEOUT_S = 60.0
INFO_TIMEOUT_S = 30.0


@dataclass
class CondaCall:
    """The outcome of one conda call. Exactly one of the states holds: ok (with `data`),
    not_found, timed_out, failed (conda's own error text in `error`), not_json."""

    ok: bool = False
    data: Any = None
    not_found: bool = False
    timed_out: bool = False
    failed: bool = False
    not_json: bool = False
    error: str = ""
    args: list[str] = field(default_factory=list)


def find_conda(explicit: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The conda executable to call, or None when this machine has none we can find."""
    env = os.environ if env is None else env
    if explicit:
        return explicit
    if env.get("CONDA_EXE"):
        return env["CONDA_EXE"]
    return shutil.which("conda", path=env.get("PATH"))


def call_json(conda: str, args: list[str], timeout: float) -> CondaCall:
    """Run `conda ARGS` (which must include --json) and parse what it prints."""
    result = run([conda, *args], timeout=timeout)
    call = CondaCall(args=result.args)
    if result.not_found:
        call.not_found, call.error = True, result.error or ""
        return call
    if result.timed_out:
        call.timed_out = True
        return call
    try:
        call.data = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        call.not_json = result.returncode == 0
        call.failed = result.returncode != 0
        call.error = (result.stderr or result.stdout).strip()
        return call
    if result.returncode != 0 or result.error:
        call.failed = True
        data = call.data if isinstance(call.data, dict) else {}
        call.error = str(data.get("error") or result.stderr.strip() or result.error or "")
        return call
    call.ok = True
    return call


def clean_index_cache(conda: str) -> CondaCall:
    """`conda clean -i -y --json`: drop the cached channel index so the new mirror is read."""
    return call_json(conda, ["clean", "-i", "-y", "--json"], CLEAN_TIMEOUT_S)


def info(conda: str) -> CondaCall:
    """`conda info --json`: what conda really uses (channels, config files, version...)."""
    return call_json(conda, ["info", "--json"], INFO_TIMEOUT_S)
