"""`cnnsetup mirror ...`: point conda (and pip) at a mirror, safely, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from cnnsetup.commands.base import Group, command, json_option, option
from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import N_, _
from cnnsetup.mirror import condarc_file, conda, registry
from cnnsetup.mirror.switch import RestoreResult, SwitchResult, restore, switch
from cnnsetup.render import echo, print_json, style, table

CLEAN_ARGS = ["clean", "-i", "-y", "--json"]
# The hidden subcommand behind `cnnsetup mirror --url BASE`.
URL_COMMAND = "by-url"


class MirrorGroup(Group):
    """`mirror NAME` for every mirror in the registry, beside the fixed subcommands."""

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        mirror = registry.get(name)
        return _switch_command(mirror.name) if mirror else None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `cnnsetup mirror --url BASE ...`: a mirror given by its address, not by its name.
        if args and (args[0] == "--url" or args[0].startswith("--url=")):
            args = [URL_COMMAND, *args]
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0]
        if name.startswith(("https://", "http://")):  # an address where a name goes
            ctx.fail(_("A mirror given by its address needs --url: {command}").format(
                command=f"cnnsetup mirror --url {name}"))
        if not name.startswith("-") and self.get_command(ctx, name) is None:
            shown = [n for n in self.list_commands(ctx) if not self.commands[n].hidden]
            ctx.fail(registry.unknown_name_message(name, commands=shown))
        return super().resolve_command(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(
            _("Mirrors (use as `cnnsetup mirror NAME`): {mirrors}").format(
                mirrors=", ".join(registry.names())
            )
        )
        formatter.write_paragraph()
        formatter.write_text(_(
            "A mirror not in the list, laid out like Tsinghua's (BASE/pkgs/main, "
            "BASE/cloud/NAME): `cnnsetup mirror --url BASE [--pypi URL]`."))


@click.group(
    cls=MirrorGroup,
    help=N_(
        "Point conda (and pip) at a mirror, see what conda really uses, and undo it. "
        "`cnnsetup mirror tsinghua` switches to the Tsinghua mirror; `cnnsetup mirror restore` "
        "brings back your exact original file."
    ),
)
def mirror() -> None:
    pass


condarc_option = option(
    "--condarc",
    type=click.Path(dir_okay=True, path_type=Path),
    default=None,
    help=N_("The file to edit (default: the one `conda config` writes, ~/.condarc)."),
)


def _target(path: Optional[Path]) -> Path:
    return Path(path).absolute() if path else condarc_file.default_condarc()


# --- mirror list ------------------------------------------------------------------------------

@mirror.command("list", help=N_("Show every mirror, its URLs, what it carries and which one your config uses."))
@condarc_option
@json_option
def list_command(condarc: Optional[Path], as_json: bool) -> None:
    target = _target(condarc)
    current, problem = _read_current_mirror(target)
    rows = [
        {
            "name": m.name,
            "aliases": list(m.aliases),
            "title": m.title,
            "default_channels": m.default_channels(windows=True),
            "custom_channels": {k: f"{v}/{k}" for k, v in m.custom_channels().items()},
            "carries": (["defaults"] if m.defaults_base else []) + list(m.cloud_channels),
            "pypi": m.pypi,
            "current": m.name == current,
        }
        for m in registry.MIRRORS
    ]
    if as_json:
        from cnnsetup.mirror.status import file_verdict

        obsolete = file_verdict(str(target))[1] if target.is_file() and not problem else []
        print_json({"condarc": str(target), "current": current, "mirrors": rows,
                    "condarc_error": problem, "obsolete": [o.to_dict() for o in obsolete]})
        return
    for row in rows:
        mark = style("*", fg="green", bold=True) if row["current"] else " "
        aliases = " (" + ", ".join(row["aliases"]) + ")" if row["aliases"] else ""
        echo(f"{mark} {row['name']}{aliases}  {_(row['title'])}")
        lines = [[_("carries"), ", ".join(row["carries"])]]
        if row["default_channels"]:
            lines.append(["defaults", row["default_channels"][0].rsplit("/pkgs/", 1)[0] + "/pkgs/{main,r,msys2}"])
        if row["custom_channels"]:
            lines.append(["cloud", registry.get(row["name"]).cloud_base or ""])
        lines.append(["PyPI", row["pypi"]])
        echo(table(lines, indent=4))
    echo()
    from cnnsetup.mirror.status import file_verdict

    for item in (file_verdict(str(target))[1] if target.is_file() and not problem else []):
        echo(style(_("Obsolete: {url}: {why}").format(url=item.url, why=item.why), fg="yellow"))
        echo("    " + item.fix)
    if problem:
        echo(style(_("Warning: ") + problem, fg="yellow"), err=True)
    elif current:
        echo(_("* {path} points at {mirror}.").format(path=target, mirror=current))
    else:
        echo(_("{path} points at no known mirror (conda uses upstream or its own settings).")
             .format(path=target))


def _current_mirror(condarc: Path) -> Optional[str]:
    """The one mirror the user's file alone makes conda use, or None (a mix, none, broken): the
    same verdict `mirror status` gives for the same channels."""
    return _read_current_mirror(condarc)[0]


def _read_current_mirror(condarc: Path) -> tuple[Optional[str], Optional[str]]:
    """(the one mirror the user's file alone makes conda use, or None; why the file cannot be
    read, in the words every command uses for a broken file, or None)."""
    from cnnsetup.mirror import yaml_io
    from cnnsetup.mirror.status import file_verdict

    try:
        text = condarc_file.read(condarc)
        if text.exists:
            markers = yaml_io.split_markers(text.text, source=str(condarc))
            yaml_io.load(markers.body, source=str(condarc), first_line=markers.first_line)
    except CnnsetupError as error:
        return None, error.message
    return (file_verdict(str(condarc))[0] if condarc.is_file() else None), None


# --- mirror NAME / official / auto -----------------------------------------------------------

offline_option = option(
    "--offline", is_flag=True, envvar="CNNSETUP_OFFLINE",
    help=N_("Do not check first that each channel answers on the mirror (also CNNSETUP_OFFLINE=1)."))


def _switch_options(function):
    """The options every switching command takes: `mirror NAME`, `official` and `auto`."""
    for decorator in reversed([
        condarc_option,
        option("--dry-run", is_flag=True, help=N_("Show the change and the commands; change nothing.")),
        option("--no-clean", is_flag=True, help=N_("Do not run `conda clean -i` afterwards.")),
        offline_option,
        option("--pip", "with_pip", is_flag=True, help=N_(
            "Also point pip at the mirror's PyPI index (pip's own `pip config`; undone by "
            "`cnnsetup mirror restore --pip`).")),
        option("--conda", "conda_path", metavar="PATH", help=N_("The conda executable to use.")),
        json_option,
    ]):
        function = decorator(function)
    return function


def _switch_command(name: str) -> click.Command:
    mirror_obj = registry.get(name)
    assert mirror_obj is not None

    @command(name=name, help=N_(
        "Switch conda to this mirror: edit .condarc (keeping a backup of the original), run "
        "`conda clean -i`, then check with `conda info` what conda really uses."
    ))
    @_switch_options
    def switch_command(condarc: Optional[Path], dry_run: bool, no_clean: bool, offline: bool,
                       with_pip: bool, conda_path: Optional[str], as_json: bool) -> int:
        return _switch_and_report(mirror_obj, condarc, dry_run=dry_run, no_clean=no_clean,
                                  with_pip=with_pip, conda_path=conda_path, as_json=as_json,
                                  offline=offline)

    return switch_command


def _base_url(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    if registry.url_problem(value):
        text = value.strip()
        example = (f"https://{text}" if "://" not in text and "." in text
                   else "https://mirrors.example.edu.cn/anaconda")
        raise click.BadParameter(_("give the mirror's address, e.g. {example}").format(
            example=example), ctx=ctx, param=param)
    return _not_a_channel(value, ctx, param)


def _not_a_channel(value: str, ctx: Optional[click.Context] = None,
                   param: Optional[click.Parameter] = None) -> str:
    """`value` when it is a mirror's base; a usage error naming the base when it is one of the
    base's channels (a copied BASE/pkgs/main)."""
    base = registry.base_of_channel(value)
    if base:
        raise click.BadParameter(_("{url} is one of the mirror's channels; give its base: "
                                   "{base}").format(url=value.strip(), base=base),
                                 ctx=ctx, param=param, param_hint=None if param else "--url")
    return value


url_option = option(
    "--url", "base_url", metavar="BASE", required=True, callback=_base_url,
    help=N_("A mirror laid out like Tsinghua's: BASE/pkgs/main, BASE/cloud/conda-forge, ..."))


@command(name=URL_COMMAND, hidden=True, help=N_(
    "Switch conda to the mirror at BASE (laid out like Tsinghua's: BASE/pkgs/main, "
    "BASE/cloud/conda-forge, ...), with the same checks and backup as `cnnsetup mirror NAME`."
))
@url_option
@option("--pypi", metavar="URL", help=N_("Also point pip at this PyPI index."))
@condarc_option
@option("--dry-run", is_flag=True, help=N_("Show the change and the commands; change nothing."))
@option("--no-clean", is_flag=True, help=N_("Do not run `conda clean -i` afterwards."))
@offline_option
@option("--conda", "conda_path", metavar="PATH", help=N_("The conda executable to use."))
@json_option
def url_command(base_url: str, pypi: Optional[str], condarc: Optional[Path], dry_run: bool,
                no_clean: bool, offline: bool, conda_path: Optional[str], as_json: bool) -> int:
    mirror_obj = registry.from_url(base_url, pypi)
    return _switch_and_report(mirror_obj, condarc, dry_run=dry_run, no_clean=no_clean,
                              with_pip=pypi is not None, conda_path=conda_path, as_json=as_json,
                              offline=offline)


@mirror.command("auto", help=N_(
    "Probe every mirror and switch to the fastest one that answers correctly."
))
@option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True, metavar="S",
        help=N_("Seconds to wait for the mirrors."))
@_switch_options
def auto_command(timeout: float, condarc: Optional[Path], dry_run: bool, no_clean: bool,
                 offline: bool, with_pip: bool, conda_path: Optional[str], as_json: bool) -> int:
    from cnnsetup.mirror import speedtest

    results = speedtest.probe_all(timeout=timeout)
    best = speedtest.fastest(results, exclude=speedtest.AUTO_EXCLUDED)
    if best is None:
        raise CnnsetupError(
            _("No mirror answered within {seconds} s.").format(seconds=timeout),
            hint=_("Check the network, or choose one yourself, e.g. {command}").format(
                command="cnnsetup mirror tsinghua"),
        )
    mirror_obj = registry.get(best.mirror)
    assert mirror_obj is not None
    if not as_json:
        echo(_("Fastest mirror from here: {mirror} ({ms} ms).").format(
            mirror=mirror_obj.name, ms=round((best.latency_s or 0) * 1000)))
    return _switch_and_report(mirror_obj, condarc, dry_run=dry_run, no_clean=no_clean,
                              with_pip=with_pip, conda_path=conda_path, as_json=as_json,
                              probes=[r.to_dict() for r in results], offline=offline)


def _switch_and_report(mirror_obj: registry.Mirror, condarc: Optional[Path], *, dry_run: bool,
                       no_clean: bool, with_pip: bool, conda_path: Optional[str], as_json: bool,
                       probes: Optional[list] = None, offline: bool = False) -> int:
    """Check the mirror's channels live (unless offline), switch the file, then pip (if asked),
    then let conda prove what it uses; render it all."""
    target = _target(condarc)
    result = switch(mirror_obj, target, dry_run=dry_run, probe=not offline)
    mirror_obj = _written_mirror(mirror_obj, result)
    pip_change, pip_error = None, None
    if with_pip and not dry_run:
        try:
            from cnnsetup.mirror import pip

            pip_change = pip.point_at(mirror_obj, target)
        except CnnsetupError as error:  # the .condarc change stands and is reported below
            pip_error = error.message
    report = None
    if not dry_run:
        from cnnsetup.mirror.confirm import confirm_switch

        report = confirm_switch(mirror_obj, conda.find_conda(conda_path), condarc=str(target),
                                clean=result.changed and not no_clean)
    if as_json:
        payload = _switch_json(result, mirror_obj)
        payload["confirm"] = report.to_dict() if report else None
        payload["pip"] = _pip_json(pip_change, mirror_obj.pypi if with_pip else None)
        if pip_error is not None:
            payload["pip"]["error"] = pip_error
        if probes is not None:
            payload["probes"] = probes
        print_json(payload)
        return 1 if pip_error or (pip_change is not None and not pip_change.in_effect) else 0
    _show_switch(result, no_clean)
    if with_pip and pip_error is None:
        _show_pip(pip_change, None if mirror_obj.is_official else mirror_obj.pypi, dry_run)
    if report is not None:
        for level, text in report.lines():  # one block, on stdout, in order
            colour = {"ok": "green", "warn": "yellow"}.get(level)
            echo(style(text, fg=colour) if colour else text)
    if pip_error is not None:
        echo(_("Error: {message}").format(message=_("pip was not changed: {error}").format(
            error=pip_error)), err=True)
        return 1
    return 1 if pip_change is not None and not pip_change.in_effect else 0


def _pip_json(change, url: Optional[str]) -> Optional[dict]:
    if url is None:
        return None
    if change is None:
        return {"index_url": url, "changed": None, "previous": None, "in_effect": None,
                "overrides": []}
    payload = change.to_dict()
    payload["index_url"] = change.current
    return payload


def _show_pip(change, url: Optional[str], dry_run: bool) -> None:
    from cnnsetup.mirror import pip

    if dry_run:
        echo(pip.planned_change(url))
        return
    shown = change.current or pip.PYPI
    if not change.in_effect:
        # The user file says the mirror, but pip install will not use it: say what it uses.
        echo(style(_("pip's user file now names {url}, but pip install will keep using "
                     "{effective} (set by {source}) until that is changed.").format(
            url=shown, effective=change.effective, source=change.effective_source),
            fg="yellow"))
    elif change.changed:
        echo(_("pip now uses {url} (was: {previous}).").format(
            url=shown, previous=change.used_before or change.previous or "PyPI"))
    else:
        echo(_("pip already uses {url}.").format(url=shown))
    for override in change.overrides:
        if override.wins:
            echo(style(_("Warning: {text}").format(text=override.describe()), fg="yellow"),
                 err=True)


def _written_mirror(mirror_obj: registry.Mirror, result: SwitchResult) -> registry.Mirror:
    """The mirror as written: channels found dead by the live check are left out (so that
    `conda info` is compared with what the file really says)."""
    if not result.live:
        return mirror_obj
    dead = [c["channel"] for c in result.live["channels"]
            if c["status"] == "http_error" and c["channel"] != "pkgs/main"]
    return mirror_obj.without(dead) if dead else mirror_obj


def _switch_json(result: SwitchResult, mirror_obj: Optional[registry.Mirror] = None) -> dict:
    return {
        "mirror": result.mirror,
        "url": mirror_obj.defaults_base if mirror_obj is not None and mirror_obj.by_url else None,
        "condarc": str(result.condarc),
        "changed": result.changed,
        "dry_run": result.dry_run,
        "backup": str(result.backup) if result.backup else None,
        "diff": result.diff,
        "warnings": result.warnings,
        "recovered": result.recovered,
        "notes": result.notes,
        "live_check": result.live,
        "commands": [["conda", *CLEAN_ARGS], ["conda", "info", "--json"]] if result.dry_run else [],
    }


def _show_switch(result: SwitchResult, no_clean: bool) -> None:
    mirror_obj = registry.get(result.mirror)
    named = mirror_words(result.mirror, _(mirror_obj.title) if mirror_obj else None)
    for note in result.recovered:
        echo(style(_("Note: ") + note, fg="yellow"))
    if result.dry_run:
        if result.changed and not result.diff:
            echo(_("Would remove the UTF-8 byte-order mark (BOM) at the start of {path}: it can "
                   "crash conda on Windows. Nothing else would change.").format(path=result.condarc))
        elif result.changed:
            echo(_("Would change {path} to use {mirror}:").format(
                path=result.condarc, mirror=named))
            echo(_colour_diff(result.diff), nl=False)
            echo(_("Would then run: {command}").format(command="conda " + " ".join(CLEAN_ARGS)))
            echo(_("Would then run: {command}").format(command="conda info --json"))
        else:
            echo(_("{path} already uses {mirror}; nothing would change.").format(
                path=result.condarc, mirror=result.mirror))
        echo(_("(dry run: nothing was changed)"))
    elif not result.changed:
        echo(_("{path} already uses {mirror}; nothing changed.").format(
            path=result.condarc, mirror=named))
    else:
        echo(_("Switched {path} to {mirror}.").format(path=result.condarc, mirror=named))
        if result.drops_bom:
            echo(_("Removed the UTF-8 byte-order mark (BOM): it can crash conda on Windows."))
        echo(_colour_diff(result.diff), nl=False)
        if result.backup and result.original_existed:
            echo(_("Your original is kept in {path}; undo with: {command}").format(
                path=result.backup, command="cnnsetup mirror restore"))
        elif result.backup:
            echo(_("You had no {path} before; {command} removes it again.").format(
                path=result.condarc, command="cnnsetup mirror restore"))
        if no_clean:
            echo(_("Skipped `conda clean -i` (--no-clean); run it yourself: {command}").format(
                command="conda clean -i"))
    if mirror_obj and mirror_obj.note:
        echo(style(_("Note: ") + _(mirror_obj.note), fg="yellow"))
    for note in result.notes:
        echo(style(_("Note: ") + note, fg="yellow"))
    for warning in result.warnings:
        echo(style(_("Warning: ") + warning, fg="yellow"), err=True)


def _colour_diff(diff: str) -> str:
    lines = []
    for line in diff.splitlines(keepends=True):
        if line.startswith("+") and not line.startswith("+++"):
            lines.append(style(line.rstrip("\n"), fg="green") + "\n")
        elif line.startswith("-") and not line.startswith("---"):
            lines.append(style(line.rstrip("\n"), fg="red") + "\n")
        else:
            lines.append(line)
    return "".join(lines)


# --- mirror restore ---------------------------------------------------------------------------

@mirror.command("restore", help=N_(
    "Put back the exact .condarc you had before cnnsetup changed it (or remove it if you had "
    "none), then drop the backup."
))
@condarc_option
@option("--force", is_flag=True, help=N_(
    "Restore even if the file was edited since cnnsetup changed it (the edited file is kept aside)."
))
@option("--pip", "with_pip", is_flag=True, help=N_(
    "Also put back pip's index-url as it was before cnnsetup changed it."))
@option("--no-clean", is_flag=True, help=N_("Do not run `conda clean -i` afterwards."))
@option("--conda", "conda_path", metavar="PATH", help=N_("The conda executable to use."))
@json_option
def restore_command(condarc: Optional[Path], force: bool, with_pip: bool, no_clean: bool,
                    conda_path: Optional[str], as_json: bool) -> int:
    from cnnsetup.mirror import pip

    target = _target(condarc)
    has_pip_record = pip.load_record(target) is not None
    # Whether anything is kept is decided under the lock, by restore(); this only chooses
    # between "nothing for pip nor the file" and restoring the file.
    has_backup = any(_lexists(p) for p in (condarc_file.backup_meta_path(target),
                                          condarc_file.backup_bytes_path(target)))
    if with_pip and not has_pip_record and not has_backup:
        raise CnnsetupError(_("There is no cnnsetup backup for {path} nor for pip: nothing to "
                              "restore.").format(path=target))
    result = restore(target, force=force) if (has_backup or not with_pip) else None
    clean = None
    if result is not None and not no_clean:
        found = conda.find_conda(conda_path)
        clean = conda.clean_index_cache(found) if found else None
    pip_restore = pip.restore_backup(target, force=force) if with_pip and has_pip_record else None
    if as_json:
        payload = _restore_json(result) if result else {"condarc": str(target), "restored": False}
        payload["clean"] = clean.to_dict() if clean else None
        payload["pip"] = pip_restore.to_dict() if pip_restore else None
        print_json(payload)
        return 0
    if result is not None:
        for note in result.recovered:
            echo(style(_("Note: ") + note, fg="yellow"))
        _show_restored(result.condarc, result.removed, result.kept_aside)
        _show_clean(clean, no_clean)
    if pip_restore is not None:
        _show_restored(pip_restore.path, pip_restore.removed, pip_restore.kept_aside)
        for folder in pip_restore.removed_dirs:
            echo(_("Removed the empty folder {path}: cnnsetup had made it for that file.")
                 .format(path=folder))
        echo(_("pip's index-url is back to {url}.").format(url=pip_restore.change.effective))
    elif with_pip:
        echo(_("pip was not changed by cnnsetup; nothing to restore there."))
    elif has_pip_record:
        echo(_("pip still uses the mirror; to undo that too: {command}").format(
            command="cnnsetup mirror restore --pip"))
    return 0


def _show_restored(path, removed: bool, kept_aside) -> None:
    """What a restore did to one file (.condarc or pip's): removed or back to its bytes, and
    where an edited copy was kept."""
    if removed:
        echo(_("Removed {path}: there was no such file before cnnsetup.").format(path=path))
    else:
        echo(_("Restored {path} to its original bytes.").format(path=path))
    if kept_aside:
        echo(_("The edited file is kept as {path}.").format(path=kept_aside))


def mirror_words(name: str, title: Optional[str]) -> str:
    """"tsinghua (Tsinghua University (TUNA))", or the name alone when the title says no more
    (a mirror given by its address is named and titled by it)."""
    if not title or title == name:
        return name
    return _("{name} ({title})").format(name=name, title=title)


def _lexists(path: Path) -> bool:
    import os

    return os.path.lexists(path)


def _show_clean(clean, no_clean: bool) -> None:
    """Say whether `conda clean -i` ran after a restore, and what to do when it did not."""
    if no_clean:
        echo(_("Skipped `conda clean -i` (--no-clean); run it yourself: {command}").format(
            command="conda clean -i"))
    elif clean is None:
        echo(_("conda was not found, so `{command}` did not run; run it where conda is, so "
               "conda forgets the mirror's index.").format(command="conda clean -i"))
    elif clean.ok:
        echo(_("Ran `{command}`: conda forgot the mirror's index.").format(
            command="conda clean -i"))
    else:
        echo(style(clean.describe(), fg="yellow"))
        echo(_("Run `{command}` so conda forgets the mirror's index.").format(
            command="conda clean -i"))


def _restore_json(result: RestoreResult) -> dict:
    return {
        "condarc": str(result.condarc),
        "restored": True,
        "removed": result.removed,
        "kept_aside": str(result.kept_aside) if result.kept_aside else None,
        "recovered": result.recovered,
    }

from cnnsetup.commands.mirror_status import status_command, test_command  # noqa: E402

mirror.add_command(status_command)
mirror.add_command(test_command)
mirror.add_command(url_command)
