"""`cnnsetup mirror ...`: point conda (and pip) at a mirror, safely, and back."""

from __future__ import annotations

import click

from cnnsetup.commands.base import Group, json_option
from cnnsetup.i18n import N_, _
from cnnsetup.mirror import registry
from cnnsetup.render import echo, print_json, table


class MirrorGroup(Group):
    """`mirror NAME` for every mirror in the registry, beside the fixed subcommands."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        mirror = registry.get(name)
        if mirror is None:
            return None
        return _switch_command(mirror.name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0]
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            ctx.fail(
                _("Unknown mirror or command {name!r}. Known mirrors: {mirrors}.").format(
                    name=name, mirrors=", ".join(registry.names())
                )
            )
        return super().resolve_command(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(_("Mirrors: {mirrors}").format(mirrors=", ".join(registry.names())))


@click.group(
    cls=MirrorGroup,
    help=N_("Point conda (and pip) at a mirror, see what conda really uses, and undo it."),
)
def mirror() -> None:
    pass


@mirror.command("list", help=N_("Show every mirror, its URLs and what it carries."))
@json_option
def list_command(as_json: bool) -> None:
    rows = [
        {
            "name": m.name,
            "aliases": list(m.aliases),
            "title": m.title,
            "default_channels": m.default_channels(windows=True),
            "custom_channels": m.custom_channels(),
            "pypi": m.pypi,
        }
        for m in registry.MIRRORS
    ]
    if as_json:
        print_json({"mirrors": rows})
        return
    echo(table([[r["name"], _(r["title"]), r["pypi"]] for r in rows]))


def _switch_command(name: str) -> click.Command:
    @click.command(name=name, help=N_("Switch conda to this mirror."))
    def switch() -> None:
        echo(_("Not implemented yet: {name}").format(name=name))
        return 1

    return switch


from cnnsetup.commands.mirror_status import status_command, test_command  # noqa: E402

mirror.add_command(status_command)
mirror.add_command(test_command)
