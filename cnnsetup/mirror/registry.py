"""The mirrors cnnsetup knows, as data: the one place a mirror URL is written down.

Sources: each mirror's own help page (see the project's MIRRORS notes). https only: a mirror
whose help page shows http is still reached over https.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, replace
from typing import Optional, Sequence

from cnnsetup.i18n import N_, _

UPSTREAM_DEFAULTS = "https://repo.anaconda.com/pkgs"
UPSTREAM_ALIAS = "https://conda.anaconda.org"


@dataclass(frozen=True)
class Mirror:
    """One mirror: where its `defaults` copy and its cloud channels live, and its PyPI index."""

    name: str
    title: str
    pypi: str
    # Base of `pkgs/main`, `pkgs/r`, `pkgs/msys2`; None when the mirror has no `defaults` copy.
    defaults_base: Optional[str]
    # Base for `custom_channels` (the channel name is appended); None for upstream.
    cloud_base: Optional[str]
    cloud_channels: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    note: str = ""  # marked with N_, translated when shown
    # Channels this mirror should carry but did not answer for today ("pkgs/r", "conda-forge"):
    # left out of what a switch writes, so conda uses upstream for them (see channel_probe).
    missing: frozenset = frozenset()
    # Built from `cnnsetup mirror --url BASE`, not one of the registry's entries.
    by_url: bool = False

    @property
    def is_official(self) -> bool:
        return self.name == "official"

    def default_channels(self, windows: bool) -> list[str]:
        """The URLs `defaults` should stand for; msys2 only on Windows, as conda's own defaults."""
        if self.defaults_base is None:
            return []
        names = ["main", "r"] + (["msys2"] if windows else [])
        return [f"{self.defaults_base}/pkgs/{n}" for n in names if f"pkgs/{n}" not in self.missing]

    def carried(self) -> tuple[str, ...]:
        """The cloud channels this mirror carries (less those found missing today)."""
        return tuple(c for c in self.cloud_channels if c not in self.missing)

    def custom_channels(self) -> dict[str, str]:
        """`custom_channels` entries: channel name -> base URL (conda appends the name)."""
        if self.cloud_base is None:
            return {}
        return {channel: self.cloud_base for channel in self.carried()}

    def channel_url(self, channel: str) -> Optional[str]:
        """The full URL of `channel` on this mirror, or None when it does not carry it."""
        if self.is_official:
            return f"{UPSTREAM_ALIAS}/{channel}"
        if self.cloud_base and channel in self.carried():
            return f"{self.cloud_base}/{channel}"
        return None

    def without(self, channels) -> "Mirror":
        """This mirror with `channels` ("pkgs/r", "conda-forge"...) left out of what it writes."""
        return replace(self, missing=frozenset(self.missing) | frozenset(channels))

    def url_prefixes(self) -> list[str]:
        """URL prefixes that identify this mirror (without a trailing slash)."""
        if self.is_official:
            return [UPSTREAM_DEFAULTS, UPSTREAM_ALIAS]
        return [u for u in (self.defaults_base, self.cloud_base) if u]


_EDU_CLOUD = ("conda-forge", "pytorch", "bioconda")

MIRRORS: tuple[Mirror, ...] = (
    Mirror(
        name="tsinghua",
        aliases=("tuna",),
        title=N_("Tsinghua University (TUNA)"),
        defaults_base="https://mirrors.tuna.tsinghua.edu.cn/anaconda",
        cloud_base="https://mirrors.tuna.tsinghua.edu.cn/anaconda/cloud",
        cloud_channels=_EDU_CLOUD,
        pypi="https://pypi.tuna.tsinghua.edu.cn/simple",
    ),
    Mirror(
        name="bfsu",
        title=N_("Beijing Foreign Studies University"),
        defaults_base="https://mirrors.bfsu.edu.cn/anaconda",
        cloud_base="https://mirrors.bfsu.edu.cn/anaconda/cloud",
        cloud_channels=_EDU_CLOUD,
        pypi="https://mirrors.bfsu.edu.cn/pypi/web/simple",
    ),
    Mirror(
        name="sjtu",
        title=N_("Shanghai Jiao Tong University"),
        defaults_base="https://mirror.sjtu.edu.cn/anaconda",
        cloud_base="https://mirror.sjtu.edu.cn/anaconda/cloud",
        cloud_channels=("conda-forge", "pytorch"),
        pypi="https://mirror.sjtu.edu.cn/pypi/web/simple",
    ),
    Mirror(
        name="nju",
        title=N_("Nanjing University"),
        defaults_base="https://mirror.nju.edu.cn/anaconda",
        cloud_base="https://mirror.nju.edu.cn/anaconda/cloud",
        cloud_channels=_EDU_CLOUD,
        pypi="https://mirror.nju.edu.cn/pypi/web/simple",
    ),
    Mirror(
        name="aliyun",
        title=N_("Alibaba Cloud"),
        defaults_base="https://mirrors.aliyun.com/anaconda",
        cloud_base="https://mirrors.aliyun.com/anaconda/cloud",
        cloud_channels=_EDU_CLOUD,
        pypi="https://mirrors.aliyun.com/pypi/simple/",
    ),
    Mirror(
        name="ustc",
        title=N_("University of Science and Technology of China"),
        defaults_base=None,
        cloud_base="https://mirrors.ustc.edu.cn/anaconda/cloud",
        cloud_channels=("conda-forge", "bioconda"),
        pypi="https://mirrors.ustc.edu.cn/pypi/simple",
        note=N_(
            "USTC mirrors conda-forge and bioconda only: `defaults` (main, r) still comes from "
            "upstream, and pytorch is not mirrored."
        ),
    ),
    Mirror(
        name="official",
        title=N_("Upstream (Anaconda, conda-forge, PyPI)"),
        defaults_base="https://repo.anaconda.com",
        cloud_base=None,
        pypi="https://pypi.org/simple",
        note=N_(
            "Upstream `defaults` (repo.anaconda.com) may ask you to accept Anaconda's terms of "
            "service (CondaToSNonInteractiveError); conda-forge does not."
        ),
    ),
)

# For tests and for trying a mirror's layout on a local server: with CNNSETUP_MIRROR_ROOT set to
# http://127.0.0.1:PORT, every registry URL https://HOST/PATH becomes http://127.0.0.1:PORT/HOST/PATH.
ROOT_VARIABLE = "CNNSETUP_MIRROR_ROOT"


def _under_root(url: Optional[str], root: str) -> Optional[str]:
    if url is None or not url.startswith("https://"):
        return url
    return root.rstrip("/") + "/" + url[len("https://"):]


def rooted(mirrors: tuple[Mirror, ...], root: Optional[str]) -> tuple[Mirror, ...]:
    """`mirrors` with every URL moved under `root` (see ROOT_VARIABLE); unchanged when None."""
    if not root:
        return mirrors
    return tuple(
        m if m.is_official else replace(
            m, defaults_base=_under_root(m.defaults_base, root),
            cloud_base=_under_root(m.cloud_base, root), pypi=_under_root(m.pypi, root) or m.pypi)
        for m in mirrors
    )


MIRRORS = rooted(MIRRORS, os.environ.get(ROOT_VARIABLE))

# The cloud channels a mirror laid out like Tsinghua's carries (`BASE/cloud/NAME`).
URL_MIRROR_CHANNELS = _EDU_CLOUD


# A channel's address under a base laid out like Tsinghua's: BASE/pkgs/main (or r, msys2, and
# the old free and pro), BASE/cloud, or BASE/cloud/NAME for a channel the mirrors carry (TUNA's
# help page lists these), each maybe with a platform subdir; any BASE/cloud/NAME/SUBDIR too. A
# base that merely has "cloud" in its path (https://host/cloud/anaconda) is a base.
_CLOUD_NAMES = ("conda-forge", "pytorch", "pytorch-lts", "pytorch3d", "bioconda", "msys2",
                "menpo", "simpleitk", "nvidia", "rapidsai", "pyviz", "fastai", "numba",
                "paddle", "Paddle", "deepmodeling", "intel", "caffe2", "ohmeta", "stackless")
_SUBDIR = r"(?:noarch|(?:linux|win|osx|zos)-[a-z0-9_]+)"
_CHANNEL_TAIL = re.compile(
    rf"/(?:pkgs(?:/(?:main|r|msys2|free|pro)(?:/{_SUBDIR})?)?"
    rf"|cloud(?:/(?:{'|'.join(map(re.escape, _CLOUD_NAMES))})(?:/{_SUBDIR})?|/[^/]+/{_SUBDIR})?)"
    r"(?:/[^/]*repodata[^/]*)?$")  # conda's errors print .../linux-64/current_repodata.json


def url_problem(url: str) -> Optional[str]:
    """Why `url` cannot be a mirror's base (untranslated words for an error), or None: not
    http(s), no host, a port or bracketed address Python cannot read, a query or fragment."""
    from urllib.parse import urlsplit

    url = url.strip()
    if not url.startswith(("https://", "http://")):
        return "not an http(s) address"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        return str(error)
    if not parts.hostname:
        return "no host name"
    if parts.query or parts.fragment:
        return "a ? or # part"
    return None


def base_of_channel(url: str) -> Optional[str]:
    """The base when `url` is one of its channels rather than the base itself:
    "https://H/anaconda/pkgs/main" -> "https://H/anaconda"; None for a base."""
    url = url.strip().rstrip("/")
    match = _CHANNEL_TAIL.search(url)
    if not match or "://" not in url[:match.start()]:
        return None
    base = url[:match.start()]
    return base if len(base.split("://", 1)[1]) > 0 else None


def from_url(base: str, pypi: Optional[str] = None) -> Mirror:
    """A mirror laid out like Tsinghua's, from its base URL: BASE/pkgs/main, BASE/cloud/NAME.

    Raises ValueError when `base` is not a usable http(s) URL (`url_problem`), or is one of a
    base's channels (BASE/pkgs/main: every channel would then be BASE/pkgs/main/pkgs/main)."""
    base = base.strip().rstrip("/")
    if url_problem(base) or base_of_channel(base):
        raise ValueError(base)
    return Mirror(name=base, title=base, pypi=pypi or "", defaults_base=base,
                  cloud_base=f"{base}/cloud", cloud_channels=URL_MIRROR_CHANNELS, by_url=True)


_BY_NAME = {m.name: m for m in MIRRORS}
_BY_NAME.update({alias: m for m in MIRRORS for alias in m.aliases})


def names() -> list[str]:
    """Every mirror name, in registry order (aliases not included)."""
    return [m.name for m in MIRRORS]


def get(name: str) -> Optional[Mirror]:
    """The mirror called `name` (or one of its aliases), case-insensitive; None when unknown."""
    return _BY_NAME.get(name.strip().lower())


def closest(name: str, others: Sequence[str] = ()) -> Optional[str]:
    """The mirror name or alias (or one of `others`, say the subcommands beside the mirrors)
    `name` was most likely meant to be ("tsinghau" -> "tsinghua"), by difflib's similarity
    ratio of at least 0.6; None when nothing is that close."""
    found = difflib.get_close_matches(name.strip().lower(), [*_BY_NAME, *others], n=1,
                                      cutoff=0.6)
    return found[0] if found else None


def unknown_name_message(name: str, *, commands: Sequence[str] = ()) -> str:
    """The message for a mirror name that is not in the registry: every name, then the likely
    one. `commands`: the subcommands that could also stand where the name stood."""
    known = ", ".join(names())
    text = (_("Unknown mirror or command {name!r}. Known mirrors: {mirrors}.") if commands
            else _("Unknown mirror {name!r}. Known mirrors: {mirrors}.")).format(
                name=name, mirrors=known)
    likely = closest(name, commands)
    if likely:
        text = _("{message} Did you mean {name}?").format(message=text, name=likely)
    return text


def mirror_of_url(url: str) -> Optional[Mirror]:
    """The known mirror that `url` points into, or None (upstream URLs give `official`)."""
    normalized = _https(url.strip().rstrip("/"))
    best: tuple[int, Optional[Mirror]] = (0, None)
    for mirror in MIRRORS:
        for prefix in map(_https, mirror.url_prefixes()):
            if (normalized == prefix or normalized.startswith(prefix + "/")) and len(prefix) > best[0]:
                best = (len(prefix), mirror)
    return best[1]


def _https(url: str) -> str:
    return "https://" + url[len("http://"):] if url.startswith("http://") else url


def mirror_of_pypi(url: str) -> Optional[Mirror]:
    """The mirror whose PyPI index `url` is (http or https, trailing slash or not), or None."""
    def norm(u: str) -> str:
        u = u.strip().rstrip("/")
        return "https://" + u[len("http://"):] if u.startswith("http://") else u

    wanted = norm(url)
    return next((m for m in MIRRORS if norm(m.pypi) == wanted), None)
