"""`cnnsetup verify`: prove the installation by training and validating the reference network on
every device, after the machine checks of `cnnsetup info`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from cnnsetup.commands.base import command, json_option, option
from cnnsetup.commands.report import student_option
from cnnsetup.i18n import N_, _
from cnnsetup.render import ProgressLine, echo, print_json, style


@command(
    "verify",
    short_help=N_("Prove PyTorch works: train the reference CNN on every device."),
    help=N_("Check this machine, then on every device (CPU, each GPU, MPS) prove each operation "
            "the network uses, forward and backward in float32, against its definition, and "
            "train and validate the reference CNN with torch.optim, to prove PyTorch really "
            "works. Exit status 1 when a check fails."),
)
@option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps", "all"]), default="auto",
        show_default=True,
        help=N_("Devices to train on: auto = the CPU plus every GPU torch sees (or MPS)."))
@option("--epochs", type=click.IntRange(min=1), default=None,
        help=N_("Training epochs (default: the smoke configuration's)."))
@option("--seed", type=int, default=0, show_default=True, help=N_("Seed for data and weights."))
@option("--ddp", type=click.IntRange(min=1), default=None, metavar="N",
        help=N_("Also train with DistributedDataParallel over N processes (gloo on CPU, nccl "
                "across GPUs) and check that every replica ends with identical weights."))
@option("--nnodes", type=click.IntRange(min=1), default=None, metavar="M",
        help=N_("With --ddp: machines (nodes) in the job; start the same command on each."))
@option("--node-rank", type=click.IntRange(min=0), default=None, metavar="R",
        help=N_("With --nnodes: this node's rank, 0 .. M-1; node 0 is the master."))
@option("--master-addr", default=None, metavar="HOST",
        help=N_("With --nnodes: the address of node 0 that every node can reach."))
@option("--master-port", type=click.IntRange(min=1, max=65535), default=None, metavar="PORT",
        help=N_("With --nnodes: the rendezvous port on node 0 (default 29500)."))
@option("--rdzv-endpoint", default=None, metavar="HOST:PORT",
        help=N_("With --nnodes: meet through torch's c10d rendezvous at HOST:PORT instead; node "
                "ranks are then assigned as the nodes join."))
@option("--rdzv-timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
        metavar="S", help=N_("Seconds a node waits for the others to join."))
@option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True, metavar="S",
        help=N_("Time limit in seconds for each training run (the operation checks get at least "
                "120 s). A run still making progress at its limit is reported as too slow, one "
                "that stopped making progress as hung."))
@option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=N_("Also write the JSON report to this file (for `cnnsetup report`)."))
@student_option
@json_option
def verify(device: str, epochs: Optional[int], seed: int, ddp: Optional[int],
           nnodes: Optional[int], node_rank: Optional[int], master_addr: Optional[str],
           master_port: Optional[int], rdzv_endpoint: Optional[str], rdzv_timeout: float,
           timeout: float, report_path: Optional[Path], student: Optional[str],
           as_json: bool) -> int:
    from cnnsetup.machine import ddp as ddp_module
    from cnnsetup.machine.verify import VerifyOptions, current_mirrors, run_verify
    from cnnsetup.report_schema import with_student

    if report_path is not None:  # refused now, not after minutes of training
        from cnnsetup.report_schema import check_report_path

        check_report_path(report_path)
    cluster = _cluster(ddp=ddp, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                       master_port=master_port, rdzv_endpoint=rdzv_endpoint,
                       rdzv_timeout=rdzv_timeout)
    options = VerifyOptions(device=device, epochs=epochs, seed=seed, ddp=ddp, timeout=timeout)
    progress = None if as_json or not _is_terminal(sys.stderr) else ProgressLine()
    if not as_json:
        echo(_("Checking this machine and training the reference CNN; this takes a few seconds..."))
    with ddp_module.use_cluster(cluster):
        result = run_verify(options, on_event=progress.event if progress else None)
    if progress:
        progress.close()
    report = with_student(result.to_json(mirror=current_mirrors()), student)
    report["ddp"] = ddp_module.ddp_json(result.ddp)
    if report_path is not None:
        from cnnsetup.report_schema import write_report

        write_report(report, report_path)
    if as_json:
        print_json(report)
    else:
        echo(render_verify(result))
        if result.ddp is not None:
            echo("")
            echo(ddp_module.render_ddp(result.ddp))
        if report_path is not None:
            echo(_("Report written to {path}.").format(path=report_path))
    return 0 if result.ok else 1


def _cluster(**given):
    """The multi-node options (or Slurm's variables) as a cluster; usage errors in words."""
    from cnnsetup.machine.ddp import ClusterUsageError, resolve_cluster

    try:
        return resolve_cluster(**given)
    except ClusterUsageError as error:
        words = {
            "needs_ddp": _("{option} needs --ddp N (processes per node)."),
            "both_rendezvous": _("Give either --master-addr (static rendezvous) or "
                                 "--rdzv-endpoint (c10d rendezvous), not both."),
            "needs_master": _("--nnodes {nnodes} needs --master-addr HOST (node 0's address) "
                              "or --rdzv-endpoint HOST:PORT."),
            "needs_node_rank": _("--nnodes {nnodes} with --master-addr needs --node-rank R "
                                 "(0 on the master, 1 .. {nnodes}-1 on the others)."),
            "node_rank_range": _("--node-rank {node_rank} is not a node of --nnodes {nnodes} "
                                 "(0 .. {nnodes}-1)."),
            "bad_endpoint": _("--rdzv-endpoint {endpoint}: {detail}"),
            "bad_slurm": _("Slurm's variables cannot be read: {detail}"),
            "slurm_tasks": _("Slurm started {count} tasks on this node; run one per node: "
                             "srun --ntasks-per-node=1 cnnsetup verify --ddp N."),
        }
        raise click.UsageError(words[error.key].format(**error.values)) from None


def render_verify(result) -> str:
    """The final table: the machine checks, then the proof on each device, then the verdict."""
    from cnnsetup.commands.info import check_lines

    facts = result.facts
    torch = facts.torch
    build = (f"CUDA {torch.cuda}" if torch.cuda else _("CPU-only")) if torch.importable else None
    gpus = ", ".join(g.name for g in facts.nvidia.gpus) or _("none")
    lines = [
        style(_("Machine"), bold=True),
        "  " + _("{host}: {os}, Python {python}, torch {torch}, GPUs: {gpus}").format(
            host=facts.host, os=f"{facts.system.os} {facts.system.os_release or ''}".strip(),
            python=facts.python.version,
            torch=_("{version} ({build})").format(version=torch.version, build=build)
            if torch.importable else _("not usable"),
            gpus=gpus),
        "",
        style(_("Checks"), bold=True),
    ]
    checks = result.checks()
    lines += check_lines(checks)
    lines.append("")
    if not any(c.status == "fail" for c in checks):
        verdict = style(_("PASS"), fg="green", bold=True)
        lines.append(_("{verdict}: this machine is ready for the course ({seconds:.1f} s).").format(
            verdict=verdict, seconds=result.duration_s))
    else:
        verdict = style(_("FAIL"), fg="red", bold=True)
        failed = sum(1 for c in checks if c.status == "fail")
        lines.append(_("{verdict}: {count} check(s) failed; run the fix shown under each, then "
                       "`cnnsetup verify` again ({seconds:.1f} s).").format(
            verdict=verdict, count=failed, seconds=result.duration_s))
    return "\n".join(lines)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
