"""Is each channel a switch would write alive on the mirror today? One HEAD each, all at once.

Mirrors change: in 2026 Tsinghua answers 404 for `anaconda/pkgs/r` and `pkgs/msys2`, and a
`default_channels` entry that answers 404 makes every `conda install` fail with
`UnavailableInvalidChannel`. So before writing, every channel URL is probed: a channel counts as
alive when `<channel>/noarch/repodata.json` answers 2xx to HEAD (speedtest.probe: HEAD, falling
back to a one-byte GET when a server refuses HEAD). All probes share one deadline.

Verdicts for a switch (`LiveCheck`):
- `pkgs/main` answers with an HTTP error while the mirror answers otherwise: refused, nothing written.
- any other channel answers with an HTTP error: left out (conda then uses upstream for it), with a note.
- nothing answers at all (no network): written unchecked, with a warning.
- a channel that did not answer in time while others did: kept, with a warning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import _
from cnnsetup.mirror import speedtest
from cnnsetup.mirror.registry import Mirror

# The whole live check of a switch waits at most this long (seconds).
SWITCH_TIMEOUT_S = 3.0
REPODATA = "noarch/repodata.json"
MAIN = "pkgs/main"


def channels_of(mirror: Mirror, windows: bool, extra: Iterable[str] = ()) -> dict[str, str]:
    """channel name -> channel URL, for everything a switch to `mirror` would write:
    `pkgs/main`, `pkgs/r` (and `pkgs/msys2` on Windows), then each cloud channel, then `extra`
    cloud channel names (the user's own custom_channels entries, to see whether it carries them)."""
    urls: dict[str, str] = {}
    if mirror.is_official:
        return urls
    if mirror.defaults_base:
        for name in ("main", "r") + (("msys2",) if windows else ()):
            urls[f"pkgs/{name}"] = f"{mirror.defaults_base}/pkgs/{name}"
    if mirror.cloud_base:
        for name in tuple(mirror.cloud_channels) + tuple(extra):
            urls.setdefault(name, f"{mirror.cloud_base}/{name}")
    return urls


@dataclass
class ChannelState:
    """One channel's answer."""

    channel: str
    url: str
    result: speedtest.ProbeResult

    @property
    def alive(self) -> bool:
        return self.result.ok

    @property
    def dead(self) -> bool:
        """The server answered, and said the channel is not there (404, 403, 5xx...)."""
        return self.result.status == speedtest.HTTP_ERROR

    def to_dict(self) -> dict:
        data = self.result.to_dict()
        data.pop("mirror", None)
        return {"channel": self.channel, "channel_url": self.url, **data,
                "alive": self.alive}


@dataclass
class LiveCheck:
    """Every channel of one mirror, probed; what a switch should make of it."""

    mirror: str
    channels: list[ChannelState] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def offline(self) -> bool:
        """Nothing answered at all (no network, or the mirror is down entirely)."""
        return bool(self.channels) and not any(
            c.result.status in (speedtest.OK, speedtest.HTTP_ERROR) for c in self.channels)

    def dead(self) -> list[str]:
        return [c.channel for c in self.channels if c.dead]

    def unanswered(self) -> list[str]:
        return [c.channel for c in self.channels if not c.alive and not c.dead]

    def alive(self, channel: str) -> bool:
        return any(c.channel == channel and c.alive for c in self.channels)

    def main_dead(self) -> bool:
        return MAIN in self.dead()

    def to_dict(self) -> dict:
        return {"mirror": self.mirror, "offline": self.offline,
                "elapsed_ms": round(self.elapsed_s * 1000, 1),
                "channels": [c.to_dict() for c in self.channels]}


def check_many(targets: dict[str, dict[str, str]],
               timeout: float = SWITCH_TIMEOUT_S) -> dict[str, LiveCheck]:
    """Probe every channel of every mirror at once: {mirror: {channel: channel URL}} ->
    {mirror: LiveCheck}. Returns within `timeout` plus a fraction of a second."""
    flat = {}
    for mirror, channels in targets.items():
        for channel, url in channels.items():
            flat[f"{mirror}\t{channel}"] = f"{url.rstrip('/')}/{REPODATA}"
    start = time.monotonic()
    results = {r.mirror: r for r in speedtest.probe_all(flat, timeout=timeout)} if flat else {}
    elapsed = time.monotonic() - start
    checks = {}
    for mirror, channels in targets.items():
        check = LiveCheck(mirror, elapsed_s=elapsed)
        for channel, url in channels.items():
            result = results[f"{mirror}\t{channel}"]
            result.mirror = mirror
            check.channels.append(ChannelState(channel, url, result))
        checks[mirror] = check
    return checks


def check(mirror: Mirror, windows: bool, extra: Sequence[str] = (),
          timeout: float = SWITCH_TIMEOUT_S) -> LiveCheck:
    """Probe every channel a switch to `mirror` would write (and `extra` cloud channels)."""
    return check_many({mirror.name: channels_of(mirror, windows, extra)}, timeout)[mirror.name]


class ChannelUnavailableError(CnnsetupError):
    """The mirror answers but lacks `pkgs/main`: writing it would break every `conda install`."""

    code = "mirror.channel_unavailable"


@dataclass
class Decision:
    """What a switch does with a live check: the mirror to write (dead channels left out, the
    user's own channels it carries added), notes and warnings for the user, or a refusal."""

    mirror: Mirror
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusal: Optional[str] = None
    live: Optional[LiveCheck] = None
    unreachable: bool = False  # no channel answered at all (offline): nothing could be checked


def decide(mirror: Mirror, live: LiveCheck, extra: Sequence[str] = ()) -> Decision:
    """Turn a live check into what to write (see the module docstring)."""
    from dataclasses import replace

    if live.offline:
        return Decision(mirror, unreachable=True, warnings=[_(
            "No channel of {mirror} answered within the time limit (offline?), so its channels "
            "are unchecked. Check them later with: {command}").format(
                mirror=mirror.name, command="cnnsetup mirror test")])
    if live.main_dead():
        state = next(c for c in live.channels if c.channel == MAIN)
        return Decision(mirror, refusal=_(
            "{mirror} does not serve {channel} ({url}: {result}); switching would break every "
            "`conda install`. Nothing was changed.").format(
                mirror=mirror.name, channel=MAIN, url=state.url, result=state.result.describe()))
    decision = Decision(mirror)
    dead = [c for c in live.dead() if c not in extra]
    if dead:
        decision.mirror = mirror.without(dead)
        for state in live.channels:
            if state.channel in dead:
                decision.notes.append(_(
                    "{mirror} does not serve {channel} today ({result}): left out, so conda "
                    "takes it from upstream.").format(
                        mirror=mirror.name, channel=state.channel, result=state.result.describe()))
    carried = tuple(name for name in extra if live.alive(name))
    if carried:
        decision.mirror = replace(decision.mirror,
                                  cloud_channels=tuple(decision.mirror.cloud_channels) + carried)
    slow = [c for c in live.unanswered() if c not in extra]
    if slow:
        decision.warnings.append(_(
            "{channels} on {mirror} did not answer in time, so they are unchecked.").format(
                channels=", ".join(slow), mirror=mirror.name))
    return decision
