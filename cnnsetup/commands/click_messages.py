"""click's own messages that cnnsetup users see, listed so they enter cnnsetup's catalog.

click translates these through the standard library's gettext; `cnnsetup.i18n.set_language`
points gettext's default domain at cnnsetup's catalog, so the Chinese for them lives there.
The strings must match click's source exactly. Nothing imports this module.
"""

from cnnsetup.i18n import N_, ngettext

CLICK_MESSAGES = (
    N_("Usage:"),
    N_("Options"),
    N_("Commands"),
    N_("Show this message and exit."),
    N_("Show the version and exit."),
    N_("Error: {message}"),
    N_("Try '{command} {option}' for help."),
    N_("No such option {name!r}."),
    N_("No such command {name!r}."),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing command."),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Option {name!r} does not take a value."),
    N_("Aborted!"),
    N_("default: {default}"),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."),
    N_("Do you want to continue?"),
    N_("Choose from:\n\t{choices}"),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a directory."),
    N_("Positional arguments"),
    ngettext("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})", 1),
    ngettext("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments.", 1),
    ngettext("{value!r} is not {choice}.", "{value!r} is not one of {choices}.", 2),
)
