"""Pure edits of a .condarc document: point it at a mirror, or back at upstream.

The document is ruamel.yaml's round-trip mapping, edited in place so that every comment, key
order and quoting the user wrote stays. Only the channel keys are touched:

- `channels` lists `defaults` (added when missing); URLs of known mirrors that old recipes pasted
  straight into it become `defaults` (for `pkgs/...`) or the bare channel name (for cloud
  channels), without duplicates; the user's other channels keep their order.
- `default_channels` is the mirror's main and r (msys2 on Windows only, as conda's own defaults);
  a mirror without a `defaults` copy (and `official`) removes it, so upstream applies.
- `custom_channels` maps each channel the mirror carries to it; cnnsetup's own entries (conda-forge,
  pytorch, bioconda) that point at another known mirror are removed; the user's own entries on a
  known mirror (menpo, simpleitk...) move when the new mirror carries them (the caller adds them
  to the mirror's channels after a live check) and otherwise stay, listed in `kept_custom`.
- `validate` refuses, before any edit, the values conda 26.7 refuses, in conda's words.
- `channel_alias` and `custom_multichannels.defaults` that point at a known mirror are removed
  (they would override the above). cnnsetup never writes either, nor `ssl_verify: false`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

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
    # The user's own custom_channels entries left on another mirror ("name: base URL"), because
    # the new mirror was not found to carry them.
    kept_custom: list[str] = field(default_factory=list)


# What conda 26.7 accepts for each key cnnsetup reads or writes (conda/base/context.py): a list
# of strings, a mapping of strings, a mapping of lists of strings, one string, one of some types.
_LIST_OF_STR = ("channels", "default_channels", "whitelist_channels", "allowlist_channels",
                "denylist_channels", "migrated_channel_aliases")
_MAP_OF_STR = ("custom_channels", "migrated_custom_channels")
_MAP_OF_LISTS = ("custom_multichannels",)
_SCALARS: dict[str, tuple[type, ...]] = {
    "channel_alias": (str,),
    "show_channel_urls": (bool, type(None)),
    "ssl_verify": (str, bool),
}
# Whole-number settings: conda refuses the whole file when one is not a number (an unexpanded
# `${VARIABLE}` included; conda expands variables only in the channel and SSL keys).
_INTEGERS = ("default_threads", "repodata_threads", "fetch_threads", "verify_threads",
             "execute_threads", "remote_max_retries", "remote_backoff_factor", "verbosity",
             "auto_stack", "number_channel_notices", "unsatisfiable_hints_check_depth")
# conda's names for the types it expects, as in its InvalidTypeError message.
_CONDA_TYPE = {list: "tuple", dict: "frozendict", str: "str", bool: "bool", type(None): "NoneType"}


def _scalar(value: Any) -> Any:
    """`value` as conda sees it: ruamel keeps an anchored `true`/`false` (`&a false`) as a
    ScalarBoolean, an int subclass, which conda reads as the bool it is."""
    from ruamel.yaml.scalarbool import ScalarBoolean

    return bool(value) if isinstance(value, ScalarBoolean) else value


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "NoneType"
    return type(value).__name__


def _line_of(container: Any, key: Any) -> Optional[int]:
    """The 1-based line of `key` in `container` (a ruamel mapping or list), if known."""
    try:
        if isinstance(container, dict):
            return container.lc.key(key)[0] + 1
        return container.lc.item(key)[0] + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def _refuse(source: str, line: Optional[int], key: str, value: Any, wrong: str,
            valid: Sequence[str]) -> ConfigError:
    where = (_("{source}, line {line}").format(source=source, line=line) if line else source)
    return ConfigError(
        _(
            "{where}: conda refuses this file (InvalidTypeError): Parameter {key} = {value!r} "
            "has type {wrong}. Valid types: {valid}. Fix it by hand first; cnnsetup changed nothing."
        ).format(where=where, key=key, value=plain(value), wrong=wrong, valid=", ".join(valid))
    )


def validate(document: CommentedMap, source: str) -> None:
    """Refuse a document whose keys conda would reject, in conda's words, with the line.

    Checked as conda 26.7 checks them (conda/common/configuration.py): `channels` and
    `default_channels` are lists of strings (`tuple` in conda's words), `custom_channels` a
    mapping of strings (`frozendict`), `custom_multichannels` a mapping of lists, `channel_alias`
    one string with a scheme, `show_channel_urls` true/false, `ssl_verify` true/false or a
    string. Raises ConfigError."""
    for key in document:
        name = str(key)
        value = _scalar(document[key])
        line = _line_of(document, key)
        if value is None:
            continue  # an empty key is conda's default
        if name in _LIST_OF_STR:
            if not isinstance(value, list):
                raise _refuse(source, line, name, value, _type_name(value), ["tuple (a list)"])
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise _refuse(source, _line_of(value, index) or line, name, item,
                                  _type_name(item), ["str"])
        elif name in _MAP_OF_STR or name in _MAP_OF_LISTS:
            if not isinstance(value, dict):
                raise _refuse(source, line, name, value, _type_name(value),
                              ["frozendict (a mapping, name: value)"])
            for child in value:
                item = value[child]
                if name in _MAP_OF_LISTS:
                    if not isinstance(item, list) or not all(isinstance(u, str) for u in item):
                        raise _refuse(source, _line_of(value, child) or line, f"{name}.{child}",
                                      item, _type_name(item), ["tuple of str"])
                elif not isinstance(item, str):
                    raise _refuse(source, _line_of(value, child) or line, f"{name}.{child}",
                                  item, _type_name(item), ["str"])
        elif name in _INTEGERS:
            if isinstance(value, bool) or not (
                    isinstance(value, int) or str(value).strip().lstrip("-").isdigit()):
                raise _refuse(source, line, name, value, _type_name(value), ["int"])
        elif name in _SCALARS:
            valid = _SCALARS[name]
            if not isinstance(value, valid) or (bool not in valid and isinstance(value, bool)):
                raise _refuse(source, line, name, value, _type_name(value),
                              [_CONDA_TYPE[t] for t in valid])
            if name == "channel_alias" and value and "://" not in str(value):
                raise ConfigError(_(
                    "{source}, line {line}: conda refuses this file: channel_alias value "
                    "'{value}' must have scheme/protocol. Fix it by hand first; cnnsetup changed "
                    "nothing.").format(source=source, line=line, value=value))



def apply_mirror(document: CommentedMap, mirror: Mirror, *, windows: bool) -> EditNotes:
    """Point `document` at `mirror` (or, for `official`, back at upstream), in place."""
    notes = EditNotes()
    _set_channels(document)
    if not mirror.is_official:
        _set_scalar(document, "show_channel_urls", True)
    wanted_defaults = [] if mirror.is_official else mirror.default_channels(windows)
    _set_default_channels(document, wanted_defaults, notes)
    _set_custom_channels(document, mirror, notes)
    _drop_mirror_alias(document, notes)
    _drop_mirror_multichannel(document)
    if _scalar(document.get("ssl_verify")) is False:
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
        _put_value(document, "channels", new_seq(["defaults"]), order=("channels",), first=True)
        return
    for index in range(len(channels)):
        entry = str(channels[index])
        new = replacement_for(entry) or entry
        if new != entry:
            channels[index] = new
    seen: set[str] = set()
    duplicates = []  # every later copy of an entry; the first is kept
    for index in range(len(channels)):
        name = str(channels[index])
        if name in seen:
            duplicates.append(index)
        seen.add(name)
    for index in reversed(duplicates):  # from the end, so earlier indexes stay valid
        _remove(channels, index, document, "channels")
    if "defaults" not in {str(c) for c in channels}:
        channels.append("defaults")


def _set_scalar(document: CommentedMap, key: str, value: Any) -> None:
    if document.get(key) != value or key not in document:
        _put_value(document, key, value)


def _set_default_channels(document: CommentedMap, wanted: list[str], notes: EditNotes) -> None:
    current = document.get("default_channels")
    if wanted:
        if plain(current) == wanted:
            return
        if isinstance(current, CommentedSeq) and len(current):
            _fill_seq(current, wanted, document, "default_channels")
        else:
            _put_value(document, "default_channels", new_seq(wanted))
        return
    if "default_channels" not in document:
        return
    if current is None or all(registry.mirror_of_url(str(u)) for u in current):
        _remove(document, "default_channels")
    else:
        notes.warnings.append(
            _(
                "default_channels lists URLs that are not a known mirror ({urls}); cnnsetup "
                "left them, so `defaults` still means them."
            ).format(urls=", ".join(str(u) for u in current))
        )


def managed_channels() -> set[str]:
    """The cloud channels cnnsetup writes for some mirror (conda-forge, pytorch, bioconda)."""
    return {c for m in registry.MIRRORS for c in m.cloud_channels} | set(registry.URL_MIRROR_CHANNELS)


def users_mirror_channels(document: Any) -> list[str]:
    """The user's own `custom_channels` entries (not ones cnnsetup manages) that point into a
    known mirror: the TUNA template's menpo, simpleitk, pytorch-lts, msys2. A switch moves each to
    the new mirror when it carries it, and keeps (and lists) the others."""
    custom = document.get("custom_channels") if isinstance(document, dict) else None
    if not isinstance(custom, dict):
        return []
    managed = managed_channels()
    return [str(name) for name, base in custom.items()
            if str(name) not in managed and isinstance(base, str) and registry.mirror_of_url(base)]


def _set_custom_channels(document: CommentedMap, mirror: Mirror, notes: EditNotes) -> None:
    wanted = mirror.custom_channels()
    current = document.get("custom_channels")
    if current is None:
        if not wanted:
            if "custom_channels" in document:
                _remove(document, "custom_channels")
            return
        _put_value(document, "custom_channels", CommentedMap(wanted))
        return
    managed = managed_channels()
    kept = []
    for name in list(current):
        if name in wanted or not registry.mirror_of_url(str(current[name])):
            continue
        if str(name) in managed:
            # cnnsetup's own entry: the new mirror's, or (not carried) conda's default.
            _remove(current, name, document, "custom_channels")
        elif not str(current[name]).rstrip("/") == (mirror.cloud_base or "").rstrip("/"):
            kept.append(f"{name}: {current[name]}")
    if kept:
        notes.kept_custom.extend(kept)
    order = list(wanted)
    for name, base in wanted.items():
        if name not in current:
            _put_value(current, name, base, order=order, parent=document, parent_key="custom_channels")
        elif current.get(name) != base:
            current[name] = base
    if not current:
        _remove(document, "custom_channels")


def _drop_mirror_alias(document: CommentedMap, notes: EditNotes) -> None:
    alias = document.get("channel_alias")
    if alias is None or str(alias).rstrip("/") == registry.UPSTREAM_ALIAS:
        return
    if registry.mirror_of_url(str(alias)):
        _remove(document, "channel_alias")
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
        _remove(multi, "defaults", document, "custom_multichannels")
        if not multi:
            _remove(document, "custom_multichannels")


# Comments. ruamel.yaml keeps a comment with the node above it: an end-of-line comment and every
# full-line comment below it, up to the next key or item, form one token on the last scalar above
# (`mapping.ca.items[key][2]`, `sequence.ca.items[index][0]`). Comments before the first entry of a
# nested block sit in the parent's `ca.items[key][3]` (and the block's `ca.comment[1]`), those
# before the first key of the file in `document.ca.comment[1]`. So deleting or replacing a node
# would silently drop the comments that describe what follows it: the helpers below move them to
# the neighbour that stays, and insert new keys where the template puts them, so that switching
# A -> B -> A gives back A's bytes.

# The keys a mirror's template sets, kept together in this order: a re-added one goes back next to
# the others (a file with none of them gets them at the end, after the user's own keys).
# `channels`, when missing, goes first, where the template has it.
MIRROR_KEYS = ("show_channel_urls", "default_channels", "custom_channels")

Container = Union[CommentedMap, CommentedSeq]


def _keys(container: Container) -> list[Any]:
    return list(container) if isinstance(container, dict) else list(range(len(container)))


def _is_block(value: Any) -> bool:
    return (isinstance(value, (CommentedMap, CommentedSeq)) and len(value) > 0
            and not value.fa.flow_style())


def _slot(container: Container, key: Any) -> tuple[dict, Any, int]:
    """Where the comment below the entry `container[key]` lives: (comment items, key, index)."""
    value = container[key]
    if _is_block(value):
        return _slot(value, _keys(value)[-1])
    return container.ca.items, key, 2 if isinstance(container, dict) else 0


def _token(container: Container, key: Any) -> Optional[CommentToken]:
    items, slot_key, index = _slot(container, key)
    entry = items.get(slot_key)
    token = entry[index] if entry and len(entry) > index else None
    return token if isinstance(token, CommentToken) else None


def _set_token(container: Container, key: Any, token: Optional[CommentToken]) -> None:
    items, slot_key, index = _slot(container, key)
    entry = items.setdefault(slot_key, [None, None, None, None])
    while len(entry) <= index:
        entry.append(None)
    entry[index] = token


def _split(token: CommentToken) -> tuple[str, str]:
    """A token's end-of-line comment ("" when none) and the full lines below it."""
    end_of_line, _, lines = str(token.value).partition("\n")
    return end_of_line, lines


def _take_lines(container: Container, key: Any) -> str:
    """Detach the full comment lines below an entry, leaving its end-of-line comment."""
    token = _token(container, key)
    if token is None:
        return ""
    end_of_line, lines = _split(token)
    if lines:
        if end_of_line.strip():
            token.value = end_of_line + "\n"
        else:
            _set_token(container, key, None)
    return lines


def _add_lines(container: Container, key: Any, lines: str) -> None:
    """Put full comment lines below an entry (after those already there)."""
    if not lines:
        return
    token = _token(container, key)
    if token is None:
        _set_token(container, key, CommentToken("\n" + lines, CommentMark(0), None))
    else:
        value = str(token.value)
        token.value = (value if value.endswith("\n") else value + "\n") + lines


def _start_tokens(container: Container, key: Any) -> list:
    """The comment tokens before the first entry of the block `container[key]`."""
    entry = container.ca.items.get(key)
    if entry and len(entry) > 3 and entry[3]:
        return list(entry[3])
    comment = getattr(container[key], "ca", None) and container[key].ca.comment
    return list(comment[1]) if comment and len(comment) > 1 and comment[1] else []


def _lines_within(container: Container, key: Any) -> str:
    """Every full-line comment inside the entry `container[key]`, in file order."""
    value = container[key]
    parts = []
    if isinstance(value, (CommentedMap, CommentedSeq)):
        parts += [" " * getattr(t, "column", 0) + str(t.value) for t in _start_tokens(container, key)]
    if _is_block(value):
        parts += [_lines_within(value, child) for child in _keys(value)]
    else:
        token = _token(container, key)
        parts.append(_split(token)[1] if token is not None else "")
    return "".join(parts)


def _add_start_lines(container: Container, lines: str, parent: Optional[CommentedMap],
                     parent_key: Optional[str]) -> None:
    """Put full comment lines before the first entry of `container` (the document when no parent)."""
    token = CommentToken(lines, CommentMark(0), None)
    if parent is None:
        comment = container.ca.comment
        if comment is None:
            container.ca.comment = comment = [None, None]
        comment[1] = list(comment[1] or []) + [token]
        return
    tokens = _start_tokens(parent, parent_key) + [token]
    entry = parent.ca.items.setdefault(parent_key, [None, None, None, None])
    while len(entry) < 4:
        entry.append(None)
    entry[3] = tokens
    if container.ca.comment is None:
        container.ca.comment = [None, tokens]
    else:
        container.ca.comment[1] = tokens


def _remove(container: Container, key: Any, parent: Optional[CommentedMap] = None,
            parent_key: Optional[str] = None) -> None:
    """Delete an entry; its end-of-line comments go with it, its full-line comments stay put."""
    keys = _keys(container)
    position = keys.index(key)
    lines = _lines_within(container, key)
    if isinstance(container, dict):
        del container[key]
    else:
        _delete_item(container, key)
    if not lines:
        return
    if position > 0:
        _add_lines(container, keys[position - 1], lines)
    else:
        _add_start_lines(container, lines, parent, parent_key)


def _delete_item(seq: CommentedSeq, index: int) -> None:
    """Delete a list item and keep the comments of the items after it attached to them."""
    items = dict(seq.ca.items)
    del seq[index]
    seq.ca.items.clear()
    for position, comment in items.items():
        if position < index:
            seq.ca.items[position] = comment
        elif position > index:
            seq.ca.items[position - 1] = comment


def _put_value(container: CommentedMap, key: str, value: Any, *, first: bool = False,
               order: Sequence[str] = MIRROR_KEYS, parent: Optional[CommentedMap] = None,
               parent_key: Optional[str] = None) -> None:
    """Set `container[key]`; a new key goes where `order` puts it among the keys present.

    Comment lines below the entry before it describe what follows, so they move below the new
    entry; a replaced value's comment lines move below the new value."""
    if key in container:
        lines = _take_lines(container, key)
        container[key] = value
        _add_lines(container, key, lines)
        return
    keys = _keys(container)
    index = _insert_index(keys, key, order, first)
    lines = _take_lines(container, keys[index - 1]) if index > 0 else ""
    container.insert(index, key, value)
    _add_lines(container, key, lines)


def _insert_index(keys: list[Any], key: str, order: Sequence[str], first: bool) -> int:
    """Right after the nearest key before `key` in `order`, else right before the nearest after."""
    at = order.index(key)
    for before in reversed(order[:at]):
        if before in keys:
            return keys.index(before) + 1
    for after in order[at + 1:]:
        if after in keys:
            return keys.index(after)
    return 0 if first else len(keys)


def _fill_seq(seq: CommentedSeq, wanted: list[str], parent: CommentedMap, parent_key: str) -> None:
    """Make a list hold `wanted`, in place: comments stay, those below the last item stay last."""
    while len(seq) > len(wanted):
        _remove(seq, len(seq) - 1, parent, parent_key)
    if len(seq) < len(wanted):
        lines = _take_lines(seq, len(seq) - 1)
        seq.extend(wanted[len(seq):])
        _add_lines(seq, len(seq) - 1, lines)
    for index, url in enumerate(wanted):
        if str(seq[index]) != url:
            seq[index] = url
