"""`cnnsetup mirror ...`: point conda (and pip) at a mirror, safely, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from cnnsetup.commands.base import Group, command, json_option, option
from cnnsetup.i18n import N_, _
from cnnsetup.mirror import condarc_file, conda, registry
from cnnsetup.mirror.switch import RestoreResult, SwitchResult, restore, switch
from cnnsetup.render import echo, print_json, style, table

CLEAN_ARGS = ["clean", "-i", "-y", "--json"]


class MirrorGroup(Group):
    """`mirror NAME` for every mirror in the registry, beside the fixed subcommands."""

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        mirror = registry.get(name)
        return _switch_command(mirror.name) if mirror else None

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0]
        if not name.startswith("-") and self.get_command(ctx, name) is None:
            ctx.fail(
                _("Unknown mirror or command {name!r}. Known mirrors: {mirrors}.").format(
                    name=name, mirrors=", ".join(registry.names())
                )
            )
        return super().resolve_command(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(
            _("Mirrors (use as `cnnsetup mirror NAME`): {mirrors}").format(
                mirrors=", ".join(registry.names())
            )
        )


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
    current = _current_mirror(target)
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
        print_json({"condarc": str(target), "current": current, "mirrors": rows})
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
    if current:
        echo(_("* {path} points at {mirror}.").format(path=target, mirror=current))
    else:
        echo(_("{path} points at no known mirror (conda uses upstream or its own settings).")
             .format(path=target))


def _current_mirror(condarc: Path) -> Optional[str]:
    """The mirror the user's file points `defaults` (or conda-forge) at, or None."""
    from cnnsetup.errors import CnnsetupError
    from cnnsetup.mirror import yaml_io

    try:
        text = condarc_file.read(condarc)
        document = yaml_io.load(text.text, source=str(condarc)) if text.exists else {}
    except CnnsetupError:
        return None
    urls = [str(u) for u in (document.get("default_channels") or []) if isinstance(u, str)]
    custom = document.get("custom_channels") or {}
    if isinstance(custom, dict):
        urls += [str(v) for v in custom.values()]
    urls += [str(c) for c in (document.get("channels") or []) if "://" in str(c)]
    for url in urls:
        found = registry.mirror_of_url(url)
        if found:
            return found.name
    return None


# --- mirror NAME ------------------------------------------------------------------------------

def _switch_command(name: str) -> click.Command:
    mirror_obj = registry.get(name)
    assert mirror_obj is not None

    @command(name=name, help=N_(
        "Switch conda to this mirror: edit .condarc (keeping a backup of the original), then "
        "run `conda clean -i`."
    ))
    @condarc_option
    @option("--dry-run", is_flag=True, help=N_("Show the change and the commands; change nothing."))
    @option("--no-clean", is_flag=True, help=N_("Do not run `conda clean -i` afterwards."))
    @json_option
    def switch_command(condarc: Optional[Path], dry_run: bool, no_clean: bool, as_json: bool) -> int:
        result = switch(mirror_obj, _target(condarc), dry_run=dry_run)
        clean = None if (dry_run or no_clean or not result.changed) else _clean()
        if as_json:
            print_json(_switch_json(result, clean))
        else:
            _show_switch(result, clean, no_clean)
        return 0

    return switch_command


def _clean() -> dict:
    """Run `conda clean -i -y --json` so conda re-reads channel indexes from the new mirror."""
    path = conda.find_conda()
    if path is None:
        return {"ran": False, "ok": False, "conda": None, "error": "conda not found"}
    call = conda.clean_index_cache(path)
    return {"ran": True, "ok": call.ok, "conda": path, "error": call.error or
            ("timed out" if call.timed_out else None)}


def _switch_json(result: SwitchResult, clean: Optional[dict]) -> dict:
    return {
        "mirror": result.mirror,
        "condarc": str(result.condarc),
        "changed": result.changed,
        "dry_run": result.dry_run,
        "backup": str(result.backup) if result.backup else None,
        "diff": result.diff,
        "warnings": result.warnings,
        "clean": clean,
        "commands": [["conda", *CLEAN_ARGS]] if result.dry_run else [],
    }


def _show_switch(result: SwitchResult, clean: Optional[dict], no_clean: bool) -> None:
    mirror_obj = registry.get(result.mirror)
    title = _(mirror_obj.title) if mirror_obj else result.mirror
    if result.dry_run:
        if result.changed:
            echo(_("Would change {path} to use {mirror} ({title}):").format(
                path=result.condarc, mirror=result.mirror, title=title))
            echo(_colour_diff(result.diff), nl=False)
            echo(_("Would then run: {command}").format(command="conda " + " ".join(CLEAN_ARGS)))
        else:
            echo(_("{path} already uses {mirror}; nothing would change.").format(
                path=result.condarc, mirror=result.mirror))
        echo(_("(dry run: nothing was changed)"))
    elif not result.changed:
        echo(_("{path} already uses {mirror} ({title}); nothing changed.").format(
            path=result.condarc, mirror=result.mirror, title=title))
    else:
        echo(_("Switched {path} to {mirror} ({title}).").format(
            path=result.condarc, mirror=result.mirror, title=title))
        echo(_colour_diff(result.diff), nl=False)
        if result.backup and result.original_existed:
            echo(_("Your original is kept in {path}; undo with: {command}").format(
                path=result.backup, command="cnnsetup mirror restore"))
        elif result.backup:
            echo(_("You had no {path} before; {command} removes it again.").format(
                path=result.condarc, command="cnnsetup mirror restore"))
    if mirror_obj and mirror_obj.note:
        echo(style(_("Note: ") + _(mirror_obj.note), fg="yellow"))
    for warning in result.warnings:
        echo(style(_("Warning: ") + warning, fg="yellow"), err=True)
    if clean is not None:
        _show_clean(clean)
    elif not result.dry_run and result.changed and no_clean:
        echo(_("Skipped `conda clean -i` (--no-clean); run it yourself: {command}").format(
            command="conda clean -i"))


def _show_clean(clean: dict) -> None:
    if not clean["ran"]:
        echo(_("conda was not found, so its index cache was not cleaned. Once conda is "
               "installed, run: {command}").format(command="conda clean -i"))
    elif clean["ok"]:
        echo(_("Cleaned conda's index cache ({command}).").format(command="conda clean -i"))
    else:
        echo(style(_("`conda clean -i` failed: {error}").format(error=clean["error"]), fg="yellow"),
             err=True)


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
@json_option
def restore_command(condarc: Optional[Path], force: bool, as_json: bool) -> int:
    result = restore(_target(condarc), force=force)
    if as_json:
        print_json(_restore_json(result))
        return 0
    if result.removed:
        echo(_("Removed {path}: there was no such file before cnnsetup.").format(path=result.condarc))
    else:
        echo(_("Restored {path} to its original bytes.").format(path=result.condarc))
    if result.kept_aside:
        echo(_("The edited file is kept as {path}.").format(path=result.kept_aside))
    echo(_("Run `{command}` so conda forgets the mirror's index.").format(command="conda clean -i"))
    return 0


def _restore_json(result: RestoreResult) -> dict:
    return {
        "condarc": str(result.condarc),
        "restored": True,
        "removed": result.removed,
        "kept_aside": str(result.kept_aside) if result.kept_aside else None,
    }


from cnnsetup.commands.mirror_status import status_command, test_command  # noqa: E402

mirror.add_command(status_command)
mirror.add_command(test_command)
