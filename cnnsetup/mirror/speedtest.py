"""Probe every mirror at once with one small request each, and rank them.

Each probe is a HEAD of a channel's `repodata.json` (falling back to a one-byte ranged GET when a
server refuses HEAD), so nothing large is downloaded. Probes run on daemon threads and the caller
waits on one deadline: however many mirrors hang, `probe_all` returns within its timeout plus a
fraction of a second, and hung threads die with the process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from cnnsetup.i18n import _
from cnnsetup.mirror import registry

DEFAULT_TIMEOUT_S = 5.0
# How long after the deadline the caller may still wait for threads to hand in their results.
GRACE_S = 0.05
USER_AGENT = "cnnsetup-mirror-test"

OK, HTTP_ERROR, UNREACHABLE, TIMEOUT = "ok", "http_error", "unreachable", "timeout"


@dataclass
class ProbeResult:
    """One mirror's answer: status ok / http_error / unreachable / timeout, the HTTP status, and
    the seconds until the response headers arrived."""

    mirror: str
    url: str
    status: str
    http_status: Optional[int] = None
    latency_s: Optional[float] = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def describe(self) -> str:
        if self.status == OK:
            return _("{ms:.0f} ms").format(ms=(self.latency_s or 0) * 1000)
        if self.status == HTTP_ERROR:
            if self.http_status == 403:
                return _("refused (HTTP 403: the mirror blocks this client for now)")
            if self.http_status == 404:
                return _("not found (HTTP 404: the mirror lacks this channel)")
            return _("HTTP {status}").format(status=self.http_status)
        if self.status == TIMEOUT:
            return _("no answer within the time limit")
        return _("unreachable ({error})").format(error=self.error)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mirror": self.mirror, "url": self.url, "status": self.status,
            "http_status": self.http_status,
            "latency_ms": round(self.latency_s * 1000, 1) if self.latency_s is not None else None,
            "error": self.error or None,
        }


# `mirror auto` picks among full mirrors: USTC has no `defaults` copy; upstream is not a mirror.
AUTO_EXCLUDED = ("ustc", "official")

def probe_url(mirror: registry.Mirror) -> Optional[str]:
    """The small-request target for a mirror: its `pkgs/main` repodata when it copies
    `defaults`, else its conda-forge repodata."""
    if mirror.defaults_base:
        return f"{mirror.defaults_base}/pkgs/main/noarch/repodata.json"
    if mirror.cloud_base:
        return f"{mirror.cloud_base}/conda-forge/noarch/repodata.json"
    return None


def default_targets(mirrors: Optional[Iterable[registry.Mirror]] = None) -> dict[str, str]:
    """mirror name -> probe URL, for every mirror in the registry (read when called)."""
    mirrors = registry.MIRRORS if mirrors is None else mirrors
    targets = {}
    for mirror in mirrors:
        url = probe_url(mirror)
        if url:
            targets[mirror.name] = url
    return targets


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _request_once(url: str, method: str, timeout: float):
    """One request on a fresh connection; returns (status, seconds to headers). Redirects are
    followed by hand (at most 3) with the same method, so a HEAD never turns into a download."""
    import http.client
    from urllib.parse import urljoin, urlsplit

    for _hop in range(4):
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "https":
            import ssl

            connection: Any = http.client.HTTPSConnection(
                host, parts.port, timeout=timeout, context=ssl.create_default_context())
        elif parts.scheme == "http":
            connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        else:
            raise ValueError(f"unsupported URL scheme: {url}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = {"User-Agent": USER_AGENT, "Connection": "close"}
        if method == "GET":
            headers["Range"] = "bytes=0-0"
        start = time.monotonic()
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            elapsed = time.monotonic() - start
            status = response.status
            location = response.getheader("Location")
        finally:
            connection.close()  # never read the body: repodata is large
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        return status, elapsed
    return status, elapsed


def probe(name: str, url: str, timeout: float) -> ProbeResult:
    """Probe one URL: HEAD, or a one-byte GET when HEAD is refused (405/501)."""
    import socket

    try:
        status, elapsed = _request_once(url, "HEAD", timeout)
        if status in (405, 501):
            status, elapsed = _request_once(url, "GET", timeout)
    except (socket.timeout, TimeoutError):
        return ProbeResult(name, url, TIMEOUT, error="timed out")
    except (OSError, ValueError) as error:
        return ProbeResult(name, url, UNREACHABLE, error=str(error) or type(error).__name__)
    except Exception as error:  # a malformed answer (http.client.HTTPException...)
        return ProbeResult(name, url, UNREACHABLE, error=f"{type(error).__name__}: {error}")
    if 200 <= status < 300:
        return ProbeResult(name, url, OK, status, elapsed)
    return ProbeResult(name, url, HTTP_ERROR, status, elapsed)


def probe_all(
    targets: Optional[Mapping[str, str]] = None, timeout: float = DEFAULT_TIMEOUT_S
) -> list[ProbeResult]:
    """Probe every target (mirror name -> URL) at once; fastest answers first, then failures.

    Returns within `timeout` plus a fraction of a second: a probe still running at the deadline
    is reported as "timeout" and left to die with the process (daemon thread, never joined)."""
    targets = default_targets() if targets is None else dict(targets)
    results: dict[str, ProbeResult] = {}
    lock = threading.Lock()
    all_done = threading.Event()

    def work(name: str, url: str) -> None:
        outcome = probe(name, url, timeout)
        with lock:
            results[name] = outcome
            if len(results) == len(targets):
                all_done.set()

    deadline = time.monotonic() + timeout
    if not targets:
        return []
    for name, url in targets.items():
        threading.Thread(target=work, args=(name, url), name=f"probe-{name}", daemon=True).start()
    all_done.wait(max(0.0, deadline - time.monotonic()) + GRACE_S)
    with lock:
        final = {
            name: results.get(name) or ProbeResult(name, url, TIMEOUT, error="timed out")
            for name, url in targets.items()
        }
    return rank(final.values())


def rank(results: Iterable[ProbeResult]) -> list[ProbeResult]:
    """Working mirrors by latency, then HTTP errors, unreachable and timed-out ones by name."""
    order = {OK: 0, HTTP_ERROR: 1, UNREACHABLE: 2, TIMEOUT: 3}
    return sorted(
        results,
        key=lambda r: (order.get(r.status, 9), r.latency_s if r.ok else 0.0, r.mirror),
    )


def fastest(results: Sequence[ProbeResult], exclude: Iterable[str] = ()) -> Optional[ProbeResult]:
    """The fastest mirror that answered correctly (for `mirror auto`), or None."""
    skipped = set(exclude)
    working = [r for r in results if r.ok and r.mirror not in skipped]
    return min(working, key=lambda r: r.latency_s or 0.0) if working else None
