"""`cnnsetup verify`: prove the installation by training and validating the reference network on
every device, after the machine checks of `cnnsetup info`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from cnnsetup.commands.base import command, json_option, option
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
@option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True, metavar="S",
        help=N_("Time limit in seconds for each training run (the operation checks get at least "
                "120 s). A run still making progress at its limit is reported as too slow, one "
                "that stopped making progress as hung."))
@option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=N_("Also write the JSON report to this file (for `cnnsetup report`)."))
@json_option
def verify(device: str, epochs: Optional[int], seed: int, ddp: Optional[int], timeout: float,
           report_path: Optional[Path], as_json: bool) -> int:
    from cnnsetup.machine.verify import VerifyOptions, current_mirrors, run_verify

    options = VerifyOptions(device=device, epochs=epochs, seed=seed, ddp=ddp, timeout=timeout)
    progress = None if as_json or not _is_terminal(sys.stderr) else ProgressLine()
    if not as_json:
        echo(_("Checking this machine and training the reference CNN; this takes a few seconds..."))
    result = run_verify(options, on_event=progress.event if progress else None)
    if progress:
        progress.close()
    report = result.to_json(mirror=current_mirrors())
    if report_path is not None:
        from cnnsetup.report_schema import write_report

        write_report(report, report_path)
    if as_json:
        print_json(report)
    else:
        echo(render_verify(result))
        if report_path is not None:
            echo(_("Report written to {path}.").format(path=report_path))
    return 0 if result.ok else 1


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
            torch=f"{torch.version} ({build})" if torch.importable else _("not usable"),
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
