"""Pure edits of a .condarc document: point it at a mirror, or back at upstream.

The document is ruamel.yaml's round-trip mapping, edited in place so that every comment, key
order and quoting the user wrote stays. Only the channel keys are touched:

- `channels` lists `defaults` (added when missing); URLs of known mirrors that old recipes pasted
  straight into it become `defaults` (for `pkgs/...`) or the bare channel name (for cloud
  channels), without duplicates; the user's other channels keep their order.
- `default_channels` is the mirror's main and r (msys2 on Windows only, as conda's own defaults);
  a mirror without a `defaults` copy (and `official`) removes it, so upstream applies.
- `custom_channels` maps each channel the mirror carries to it; entries that point at another
  known mirror are removed; the user's own entries stay.
- `channel_alias` and `custom_multichannels.defaults` that point at a known mirror are removed
  (they would override the above). cnnsetup never writes either, nor `ssl_verify: false`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from cnnsetup.errors import ConfigError
from cnnsetup.i18n import _
from cnnsetup.mirror import registry
from cnnsetup.mirror.registry import Mirror
from cnnsetup.mirror.yaml_io import new_seq, plain

# Paths under a mirror's `defaults` base that old recipes list directly in `channels`.
DEFAULTS_PATHS = ("main", "r", "msys2", "free", "pro", "mro")


@dataclass
class EditNotes:
    """What an edit did that deserves a word to the user, beyond the diff."""

    warnings: list[str] = field(default_factory=list)


def validate(document: CommentedMap, source: str) -> None:
    """Refuse a document whose channel keys conda would reject or cnnsetup cannot edit safely."""
    for key in ("channels", "default_channels"):
        value = document.get(key)
        if value is not None and not isinstance(value, list):
            raise ConfigError(
                _(
                    "In {source}, `{key}` must be a list (one `- item` per line), but it is "
                    "{value!r}. conda itself refuses this file; fix it by hand first."
                ).format(source=source, key=key, value=plain(value))
            )
    custom = document.get("custom_channels")
    if custom is not None and not isinstance(custom, dict):
        raise ConfigError(
            _("In {source}, `custom_channels` must be a mapping (name: URL), but it is {value!r}.")
            .format(source=source, value=plain(custom))
        )


def apply_mirror(document: CommentedMap, mirror: Mirror, *, windows: bool) -> EditNotes:
    """Point `document` at `mirror` (or, for `official`, back at upstream), in place."""
    notes = EditNotes()
    _set_channels(document)
    if not mirror.is_official:
        _set_scalar(document, "show_channel_urls", True)
    wanted_defaults = [] if mirror.is_official else mirror.default_channels(windows)
    _set_default_channels(document, wanted_defaults, notes)
    _set_custom_channels(document, mirror.custom_channels())
    _drop_mirror_alias(document, notes)
    _drop_mirror_multichannel(document)
    if document.get("ssl_verify") is False:
        notes.warnings.append(
            _(
                "ssl_verify is false in this file: conda does not check certificates. "
                "cnnsetup left it as it is; `ssl_verify: truststore` is the safe fix for "
                "certificate errors on Python 3.10+."
            )
        )
    return notes


def replacement_for(entry: str) -> Optional[str]:
    """What a pasted mirror URL in `channels` should become, or None to keep the entry."""
    url = entry.strip().rstrip("/")
    if url.startswith("http://"):
        url = "https://" + url[len("http://"):]
    for mirror in registry.MIRRORS:
        for base in filter(None, (mirror.cloud_base, registry.UPSTREAM_ALIAS if mirror.is_official else None)):
            if url.startswith(base + "/"):
                name = url[len(base) + 1:]
                if name and "/" not in name:
                    return name
        if mirror.defaults_base:
            for path in DEFAULTS_PATHS:
                if url == f"{mirror.defaults_base}/pkgs/{path}":
                    return "defaults"
    return None


def _set_channels(document: CommentedMap) -> None:
    channels = document.get("channels")
    if channels is None:
        if "channels" in document:
            document["channels"] = new_seq(["defaults"])
        else:
            document.insert(0, "channels", new_seq(["defaults"]))
        return
    for index in range(len(channels)):
        entry = str(channels[index])
        new = replacement_for(entry) or entry
        if new != entry:
            channels[index] = new
    for index in reversed(range(len(channels))):  # keep the first of each duplicate
        if str(channels[index]) in {str(c) for c in channels[:index]}:
            _delete_item(channels, index)
    if "defaults" not in {str(c) for c in channels}:
        channels.append("defaults")


def _delete_item(seq: CommentedSeq, index: int) -> None:
    """Delete a list item and keep the comments of the items after it attached to them."""
    comments = getattr(seq, "ca", None)
    items = dict(comments.items) if comments is not None else {}
    del seq[index]
    if comments is not None:
        comments.items.clear()
        for position, comment in items.items():
            if position < index:
                comments.items[position] = comment
            elif position > index:
                comments.items[position - 1] = comment


def _set_scalar(document: CommentedMap, key: str, value: Any) -> None:
    if document.get(key) != value or key not in document:
        document[key] = value


def _set_default_channels(document: CommentedMap, wanted: list[str], notes: EditNotes) -> None:
    current = document.get("default_channels")
    if wanted:
        if plain(current) != wanted:
            document["default_channels"] = new_seq(wanted)
        return
    if "default_channels" not in document:
        return
    if current is None or all(registry.mirror_of_url(str(u)) for u in current):
        del document["default_channels"]
    else:
        notes.warnings.append(
            _(
                "default_channels lists URLs that are not a known mirror ({urls}); cnnsetup "
                "left them, so `defaults` still means them."
            ).format(urls=", ".join(str(u) for u in current))
        )


def _set_custom_channels(document: CommentedMap, wanted: dict[str, str]) -> None:
    current = document.get("custom_channels")
    if current is None:
        if not wanted:
            if "custom_channels" in document:
                del document["custom_channels"]
            return
        document["custom_channels"] = current = CommentedMap()
    for name in list(current):
        if name not in wanted and registry.mirror_of_url(str(current[name])):
            del current[name]
    for name, base in wanted.items():
        if current.get(name) != base:
            current[name] = base
    if not current:
        del document["custom_channels"]


def _drop_mirror_alias(document: CommentedMap, notes: EditNotes) -> None:
    alias = document.get("channel_alias")
    if alias is None or str(alias).rstrip("/") == registry.UPSTREAM_ALIAS:
        return
    if registry.mirror_of_url(str(alias)):
        del document["channel_alias"]
        notes.warnings.append(
            _(
                "Removed channel_alias {url}: it sends every channel to the mirror, even those "
                "it does not carry (such as nvidia); custom_channels does this safely."
            ).format(url=alias)
        )


def _drop_mirror_multichannel(document: CommentedMap) -> None:
    multi = document.get("custom_multichannels")
    if not isinstance(multi, dict) or "defaults" not in multi:
        return
    urls = multi["defaults"] or []
    if all(registry.mirror_of_url(str(u)) for u in urls):
        del multi["defaults"]
        if not multi:
            del document["custom_multichannels"]
