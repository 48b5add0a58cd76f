"""`cnnsetup mirror status` and `cnnsetup mirror test`: which mirror conda really uses and why;
how fast each mirror answers from here."""

from __future__ import annotations

import click

from cnnsetup.commands.base import command, json_option, option
from cnnsetup.i18n import N_, _
from cnnsetup.render import echo, print_json, style, table

# One screen: longer lists are cut with a count of what was left out.
MAX_CHANNEL_LINES = 10


@command("status", help=N_("Show which mirror conda really uses, and which file makes it so."))
@option("--conda", "conda_path", metavar="PATH", help=N_("The conda executable to ask."))
@option("--condarc", metavar="PATH",
        help=N_("The file cnnsetup edits (for the backup check; default: ~/.condarc)."))
@json_option
def status_command(conda_path: str | None, condarc: str | None, as_json: bool) -> int:
    from pathlib import Path

    from cnnsetup.mirror import condarc_file
    from cnnsetup.mirror.status import collect_status
    from cnnsetup.mirror.switch import recover

    target = Path(condarc).absolute() if condarc else condarc_file.default_condarc()
    recovered, backup_problem = recover(target)  # an interrupted switch or restore, repaired
    status = collect_status(conda=conda_path, condarc=condarc)
    if as_json:
        payload = status.to_dict()
        payload["backup_recovered"] = recovered
        payload["backup_problem"] = backup_problem
        print_json(payload)
    else:
        for note in recovered:
            echo(style(_("Note: ") + note, fg="yellow"))
        if backup_problem:
            echo(style(_("Warning: ") + backup_problem, fg="yellow"), err=True)
        _render_status(status)
    return 0 if status.ok else 1


def _mirror_words(name: str | None) -> str:
    from cnnsetup.mirror import registry

    if name and "://" in name:  # a mirror given by its address (mirror --url)
        return _("the mirror at {base} (not in cnnsetup's list)").format(base=name)
    mirror = registry.get(name) if name else None
    if mirror is None:
        return _("no single mirror (a mix, or unknown servers)")
    from cnnsetup.commands.mirror import mirror_words

    return mirror_words(mirror.name, _(mirror.title))


def _render_status(status) -> None:
    from cnnsetup.mirror.search_path import origin_label

    if status.config_error:  # the headline (on stderr: the command fails with it)
        echo(style(_("conda would refuse to start: {problem}").format(
            problem=status.config_error.describe()), fg="red", err=True), err=True)
    elif status.effective_channels:
        echo(_("conda uses: {mirror}").format(mirror=style(_mirror_words(status.mirror), bold=True)))
    else:
        echo(style(_("conda searches no channels: no file it reads sets {key} (since conda 25.9 "
                     "that means none).").format(key="channels"), fg="yellow"))
        skipped = [f.skipped for f in status.files if f.skipped]
        if skipped:  # a mirror switch would refuse that file too: it must be repaired first
            echo(_("conda skips {problem}; fix that line first, then: {command}").format(
                problem=skipped[0].describe(), command="cnnsetup mirror tsinghua"))
        else:
            echo(_("To use a mirror: {command}").format(command="cnnsetup mirror tsinghua"))
    if status.source == "conda":
        echo(_("Checked with {command} (conda {version}, {path}).").format(
            command="conda info --json", version=status.conda_version or "?", path=status.conda))
    elif status.conda_error:
        if not status.config_error:  # else the headline above already names the file and line
            echo(style(status.conda_error, fg="yellow"))
        echo(_("Computed from the configuration files, not checked with conda."))
    else:  # one sentence says both: no conda, so this is cnnsetup's reading of the files
        echo(_("conda was not found; this is cnnsetup's reading of the files."))
    for item in status.obsolete:
        echo(style(_("Obsolete: {url}: {why}").format(url=item.url, why=item.why), fg="yellow"))
        echo("    " + item.fix)

    if status.reasons:
        echo()
        echo(_("Why:"))
        rows = []
        for reason in status.reasons:
            why = ""
            if reason.source is not None:
                src = reason.source
                who = src.channel_source if src.key == "channels" else src.key_source
                why = _("{key} from {source}").format(key=src.key, source=_source_words(who))
            mirror = reason.mirror or _("unknown")
            if "://" in mirror:  # the mirror given by its address, named in the headline
                mirror = "--url"
            rows.append([reason.channel, mirror, reason.url, why])
        echo(table(rows, indent=2))

    if status.offenders:
        echo()
        echo(style(_("Not on {mirror}:").format(mirror=status.intended), fg="yellow"))
        for offender in status.offenders:
            echo("  " + _("{channel}: {url}").format(channel=offender.channel, url=offender.url))
            if offender.fix:
                echo("    " + offender.fix)
            if offender.fix_command:
                echo("    " + " ".join(offender.fix_command))

    echo()
    echo(_("Channels conda searches ({count}):").format(count=len(status.effective_channels)))
    for url in status.effective_channels[:MAX_CHANNEL_LINES]:
        echo("  " + url)
    hidden = len(status.effective_channels) - MAX_CHANNEL_LINES
    if hidden > 0:
        echo("  " + _("... and {count} more (see {option})").format(count=hidden, option="--json"))

    echo()
    echo(_("Configuration files, in the order conda reads them:"))
    present = [f for f in status.files if f.exists]
    rows = []
    for f in present:
        keys = ", ".join(f.keys) or "-"
        mirrors = ", ".join(f.mirrors) or "-"
        if f.ignored:
            state = _("ignored (conda reads only files named {names})").format(
                names=".condarc, condarc, *.yml, *.yaml")
        elif f.error:
            state = _("broken: {problem}").format(problem=f.error.describe())
        elif f.skipped:
            state = _("skipped by conda (cannot be read)")
        elif not f.loaded:
            state = _("not loaded")
        else:
            state = ""
        rows.append([f.path, keys, mirrors, state or origin_label(f.origin)])
    if rows:
        echo(table(rows, header=[_("file"), _("channel keys"), _("mirror"), _("note")], indent=2))
    else:
        echo("  " + _("none: conda uses its built-in settings."))
    missing = len(status.files) - len(present)
    if missing:
        echo("  " + _("({count} other places conda looks hold no file; see {option}.)").format(
            count=missing, option="--json"))
    for f in status.files:
        if f.skipped:
            echo(style(_("conda skips {path} with a warning: {problem}").format(
                path=f.path, problem=f.skipped.describe()), fg="yellow"))

    echo()
    if status.backup:
        echo(_("cnnsetup backup: {path} (undo with {command})").format(
            path=status.backup, command="cnnsetup mirror restore"))
    else:
        echo(_("cnnsetup backup: none for {path}").format(path=status.condarc))


@command("test", help=N_(
    "Probe every channel of every mirror at once (pkgs/main, r, msys2, conda-forge, pytorch, "
    "bioconda) and show which mirror answers fastest from here."))
@option("--timeout", type=click.FloatRange(min=0.1, max=120), default=5.0, show_default=True,
        metavar="S", help=N_("Seconds to wait for all mirrors together."))
@option("--url", "base_url", metavar="BASE", help=N_(
    "Probe only the mirror at BASE (laid out like Tsinghua's: BASE/pkgs/main, BASE/cloud/NAME)."))
@json_option
def test_command(timeout: float, base_url: str | None, as_json: bool) -> int:
    from cnnsetup.mirror import channel_probe, registry, speedtest

    if base_url is not None:
        from cnnsetup.commands.mirror import _not_a_channel

        _not_a_channel(base_url)
        try:
            mirrors = [registry.from_url(base_url)]
        except ValueError:
            raise click.BadParameter(_("give the mirror's address, e.g. {example}").format(
                example="https://mirrors.example.edu.cn/anaconda"), param_hint="--url") from None
    else:
        mirrors = list(registry.MIRRORS)
    targets = {m.name: channel_probe.channels_of(m, windows=True) for m in mirrors}
    for m in mirrors:  # upstream, for comparison: its pkgs/main
        if m.is_official and m.defaults_base:
            targets[m.name] = {"pkgs/main": f"{m.defaults_base}/pkgs/main"}
    checks = channel_probe.check_many(targets, timeout)
    # One line per mirror for the ranking: its first channel (pkgs/main, or conda-forge).
    heads = {name: check.channels[0].result for name, check in checks.items() if check.channels}
    results = speedtest.rank(heads.values())
    best = speedtest.fastest(results)
    if as_json:
        print_json({
            "timeout_s": timeout,
            "results": [r.to_dict() for r in results],
            "channels": {name: [c.to_dict() for c in check.channels]
                         for name, check in checks.items()},
            "fastest": best.mirror if best else None,
        })
        return 0 if best else 1
    rows = []
    for r in results:
        check = checks.get(r.mirror)
        states = check.channels if check else [None]
        for index, state in enumerate(states):
            result = state.result if state else r
            channel = state.channel if state else "pkgs/main"
            text = result.describe()
            rows.append([r.mirror if index == 0 else "", channel,
                         style(text, fg="green" if result.ok else "yellow"),
                         state.url if state else result.url])
    echo(table(rows, header=[_("mirror"), _("channel"), _("result"), _("channel URL")]))
    echo()
    if best:
        command_line = (f"cnnsetup mirror --url {base_url}" if base_url
                        else f"cnnsetup mirror {best.mirror}")
        echo(_("Fastest: {mirror}. Switch with: {command}").format(
            mirror=best.mirror, command=command_line))
        for name, check in checks.items():
            if check.dead() and not check.main_dead():
                echo(_("{mirror} lacks {channels}: a switch leaves them out (conda takes them "
                       "from upstream).").format(mirror=name, channels=", ".join(check.dead())))
    else:
        echo(_("No mirror answered within {seconds:g} seconds.").format(seconds=timeout),
             err=True)
    return 0 if best else 1


def _source_words(who: str) -> str:
    """A file path or CONDA_* variable as is; conda's built-in default in words."""
    from cnnsetup.mirror.merge import BUILTIN

    return _("conda's built-in default") if who == BUILTIN else who
