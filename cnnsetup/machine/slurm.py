"""Slurm's description of a job, read in one place: which nodes, which one this is, who leads.

Inside a job step (`srun cnnsetup verify --ddp 1`) Slurm sets, on every node:

    SLURM_JOB_ID           the job's number, e.g. "4711"
    SLURM_NNODES           nodes in the job, e.g. "3"
    SLURM_NODEID           this node's index in the job, 0 .. SLURM_NNODES-1
    SLURM_JOB_NODELIST     the nodes in Slurm's compressed host list form, e.g. "node[01-03]"
    SLURM_NTASKS_PER_NODE  tasks per node when asked for, e.g. "1" or "2(x3)"

`job_from_env` turns them into a `SlurmJob` (None outside Slurm). The first host of the expanded
node list is the master; the rendezvous port is derived from the job id, so every node of one job
picks the same port and two jobs sharing a node rarely collide.

The host list is expanded by `scontrol show hostnames` when scontrol is on PATH (Slurm's own
answer), else by `expand_hostlist`, which follows Slurm's rules (slurm/src/common/hostlist.c):
comma-separated entries; in an entry, each bracket holds comma-separated numbers or ranges
"lo-hi", zero padding taken from the range's low end ("node[08-10]" -> node08 node09 node10);
several brackets in one entry give every combination, in order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Mapping, Optional

REQUIRED = ("SLURM_JOB_ID", "SLURM_NNODES", "SLURM_NODEID", "SLURM_JOB_NODELIST")
OPTIONAL = ("SLURM_NTASKS_PER_NODE", "SLURM_LOCALID", "SLURM_PROCID", "SLURM_STEP_ID")
PORT_BASE = 20000  # rendezvous port = PORT_BASE + job id % PORT_SPAN: above the
PORT_SPAN = 20000  # well-known and registered ports people use, below Linux's ephemeral range
SCONTROL_TIMEOUT_S = 10.0


class SlurmError(ValueError):
    """A Slurm variable that cannot be read (a malformed host list or number)."""


@dataclass
class SlurmJob:
    """The job as Slurm describes it to this node."""

    job_id: str
    nnodes: int
    node_id: int  # this node's index, 0 .. nnodes-1
    nodelist: str  # compressed, as Slurm gave it
    hosts: list[str]  # expanded, in Slurm's order
    ntasks_per_node: Optional[int] = None  # the first count of SLURM_NTASKS_PER_NODE
    local_id: Optional[int] = None  # this task's index on its node (SLURM_LOCALID)
    values: dict[str, str] = field(default_factory=dict)  # every SLURM_* variable used

    @property
    def master_host(self) -> str:
        """The first host of the job: the one node rank 0 runs on."""
        return self.hosts[0]

    @property
    def master_port(self) -> int:
        return default_port(self.job_id)


def job_from_env(env: Optional[Mapping[str, str]] = None) -> Optional[SlurmJob]:
    """The Slurm job this process runs in, or None when any of `REQUIRED` is unset.

    Raises SlurmError when a variable is set but cannot be read."""
    env = os.environ if env is None else env
    if not all(env.get(name) for name in REQUIRED):
        return None
    values = {name: env[name] for name in REQUIRED + OPTIONAL if env.get(name)}
    nnodes = _count(env, "SLURM_NNODES")
    node_id = _count(env, "SLURM_NODEID")
    if nnodes < 1 or not 0 <= node_id < nnodes:
        raise SlurmError(f"SLURM_NODEID={node_id} is not a node of SLURM_NNODES={nnodes}")
    hosts = hostnames(env["SLURM_JOB_NODELIST"], env)
    if len(hosts) != nnodes:
        raise SlurmError(f"SLURM_JOB_NODELIST={env['SLURM_JOB_NODELIST']} names {len(hosts)} "
                         f"host(s), SLURM_NNODES says {nnodes}")
    per_node = None
    if env.get("SLURM_NTASKS_PER_NODE"):
        match = re.match(r"\s*(\d+)", env["SLURM_NTASKS_PER_NODE"])
        if not match:
            raise SlurmError(f"SLURM_NTASKS_PER_NODE={env['SLURM_NTASKS_PER_NODE']} is not a count")
        per_node = int(match.group(1))
    local_id = _count(env, "SLURM_LOCALID") if env.get("SLURM_LOCALID") else None
    return SlurmJob(env["SLURM_JOB_ID"], nnodes, node_id, env["SLURM_JOB_NODELIST"], hosts,
                    per_node, local_id, values)


def _count(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name].strip())
    except ValueError:
        raise SlurmError(f"{name}={env[name]} is not a whole number") from None


def default_port(job_id: str) -> int:
    """The rendezvous port for a job: the same on every node of it, from its id (the digits
    before any array suffix, "4711_3" -> 4711)."""
    digits = re.match(r"\d+", job_id.strip())
    return PORT_BASE + (int(digits.group()) if digits else 0) % PORT_SPAN


def hostnames(nodelist: str, env: Optional[Mapping[str, str]] = None) -> list[str]:
    """The host names in `nodelist`, in order: `scontrol show hostnames` when scontrol is on
    env's PATH and answers, else `expand_hostlist`."""
    env = os.environ if env is None else env
    scontrol = shutil.which("scontrol", path=env.get("PATH", os.defpath))
    if scontrol:
        try:
            done = subprocess.run([scontrol, "show", "hostnames", nodelist], capture_output=True,
                                  text=True, timeout=SCONTROL_TIMEOUT_S, env=dict(env))
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0:
            hosts = [line.strip() for line in done.stdout.splitlines() if line.strip()]
            if hosts:
                return hosts
    return expand_hostlist(nodelist)


def expand_hostlist(nodelist: str) -> list[str]:
    """Slurm's compressed host list, expanded: "node[01-03,07]" -> node01 node02 node03 node07;
    "a[1-2],b3" -> a1 a2 b3; "r[1-2]n[1-2]" -> r1n1 r1n2 r2n1 r2n2. Raises SlurmError."""
    hosts: list[str] = []
    for entry in _split_top_level(nodelist):
        hosts += _expand_entry(entry)
    if not hosts:
        raise SlurmError(f"empty host list {nodelist!r}")
    return hosts


def _split_top_level(text: str) -> list[str]:
    """Split on the commas that are not inside brackets."""
    parts, depth, current = [], 0, ""
    for char in text.strip():
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise SlurmError(f"unbalanced ']' in host list {text!r}")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise SlurmError(f"unbalanced '[' in host list {text!r}")
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _expand_entry(entry: str) -> list[str]:
    match = re.search(r"\[([^\[\]]*)\]", entry)
    if match is None:
        if "[" in entry or "]" in entry:
            raise SlurmError(f"bad host list entry {entry!r}")
        return [entry]
    head, tail = entry[:match.start()], entry[match.end():]
    out = []
    for number in _expand_range_list(match.group(1), entry):
        out += [head + number + rest for rest in _expand_entry(tail)] if tail else [head + number]
    return out


def _expand_range_list(ranges: str, entry: str) -> list[str]:
    numbers = []
    for part in ranges.split(","):
        part = part.strip()
        found = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not found:
            raise SlurmError(f"bad range {part!r} in host list entry {entry!r}")
        low, high = found.group(1), found.group(2)
        if high is None:
            numbers.append(low)
            continue
        if int(high) < int(low):
            raise SlurmError(f"range {part!r} runs backwards in host list entry {entry!r}")
        width = len(low)  # Slurm keeps the low end's zero padding for the whole range
        numbers += [str(n).zfill(width) for n in range(int(low), int(high) + 1)]
    return numbers
