"""Drivers, CUDA releases, PyTorch wheel variants and GPU generations, as data: the one place
these facts are written down (sources: NVIDIA's CUDA release notes, PyTorch's release matrix and
wheel indexes). `torch_install` and `findings` read them; nothing here runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

TORCH_INDEX = "https://download.pytorch.org/whl"

# Minimum driver per CUDA release, (Linux, Windows). A wheel built for exactly this CUDA is fully
# supported from here on.
DRIVER_FOR_CUDA: dict[tuple[int, int], tuple[str, Optional[str]]] = {
    (11, 8): ("520.61.05", "520.06"),
    (12, 1): ("530.30.02", "531.14"),
    (12, 4): ("550.54.14", "551.61"),
    (12, 6): ("560.28.03", "560.76"),
    (12, 8): ("570.26", "570.65"),
    (12, 9): ("575.51.03", "576.02"),
    (13, 0): ("580.65.06", "580.65.06"),
    (13, 2): ("595.45.04", "595.45.04"),
}

# Minor-version compatibility: a wheel that bundles CUDA M.x runs on any driver from the family
# floor on (PyTorch wheels bundle their CUDA runtime, so this is the practical check).
FAMILY_FLOOR: dict[int, tuple[str, str]] = {
    11: ("450.80.02", "452.39"),
    12: ("525.60.13", "527.41"),
    13: ("580", "580"),
}


def parse_capability(text: object) -> Optional[tuple[int, int]]:
    """"8.6", "sm_86", "compute_90" or (8, 6) -> (8, 6); None when it is not a capability."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        try:
            return int(text[0]), int(text[1])
        except (TypeError, ValueError):
            return None
    if not isinstance(text, str):
        return None
    value = text.strip().lower()
    for prefix in ("sm_", "compute_"):
        if value.startswith(prefix):
            digits = value[len(prefix):].rstrip("af")  # sm_90a, sm_100f: same generation
            if not digits.isdigit() or len(digits) < 2:
                return None
            return int(digits[:-1]), int(digits[-1])
    major, _, minor = value.partition(".")
    if major.isdigit() and minor.isdigit():
        return int(major), int(minor)
    return None


def _sm(*caps: str) -> tuple[tuple[int, int], ...]:
    return tuple(parse_capability(c) for c in caps)  # type: ignore[misc]


# Compute capabilities each wheel variant carries kernels for (sm_XY). A card runs a kernel built
# for the same major and an equal or lower minor (sm_60 code runs on a 6.1 card).
ARCH_MAXWELL_TO_HOPPER = _sm("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0")
ARCH_WITH_BLACKWELL = _sm("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0", "10.0", "12.0")
ARCH_VOLTA_TO_BLACKWELL = _sm("7.0", "7.5", "8.0", "8.6", "9.0", "10.0", "12.0")
ARCH_TURING_TO_BLACKWELL = _sm("7.5", "8.0", "8.6", "9.0", "10.0", "12.0")


@dataclass(frozen=True)
class Variant:
    """One published build of one torch release: `cu128`, and the GPUs it has kernels for."""

    name: str  # "cu128"
    cuda: tuple[int, int]  # (12, 8)
    archs: tuple[tuple[int, int], ...]

    @property
    def cuda_text(self) -> str:
        """(12, 8) -> "12.8"."""
        return f"{self.cuda[0]}.{self.cuda[1]}"


@dataclass(frozen=True)
class TorchRelease:
    """A torch minor release: its CUDA variants, PyPI's default CUDA on Linux, Pythons served."""

    version: str  # "2.7"
    variants: tuple[Variant, ...]
    pypi_linux_cuda: tuple[int, int]
    python_min: tuple[int, int]
    python_max: tuple[int, int]

    @property
    def key(self) -> tuple[int, int]:
        """"2.10" -> (2, 10), for ordering."""
        major, minor = self.version.split(".")
        return int(major), int(minor)

    def variant(self, name: str) -> Optional[Variant]:
        """The variant called `name` ("cu128") in this release, or None."""
        return next((v for v in self.variants if v.name == name), None)


def _v(name: str, archs: tuple[tuple[int, int], ...]) -> Variant:
    digits = name[2:]
    return Variant(name, (int(digits[:-1]), int(digits[-1])), archs)


_CU118 = _v("cu118", ARCH_MAXWELL_TO_HOPPER)
_CU121 = _v("cu121", ARCH_MAXWELL_TO_HOPPER)
_CU124 = _v("cu124", ARCH_MAXWELL_TO_HOPPER)
_CU126 = _v("cu126", ARCH_MAXWELL_TO_HOPPER)
_CU128_27 = _v("cu128", ARCH_WITH_BLACKWELL)  # 2.7 still carries sm_50/sm_60
_CU128 = _v("cu128", ARCH_VOLTA_TO_BLACKWELL)  # from 2.8 on
_CU129 = _v("cu129", ARCH_VOLTA_TO_BLACKWELL)
_CU130 = _v("cu130", ARCH_TURING_TO_BLACKWELL)
_CU132 = _v("cu132", ARCH_TURING_TO_BLACKWELL)

_PY39_313 = ((3, 9), (3, 13))
_PY310_314 = ((3, 10), (3, 14))

# Oldest first. The last row is the newest release the tables know.
RELEASES: tuple[TorchRelease, ...] = (
    TorchRelease("2.5", (_CU118, _CU121, _CU124), (12, 4), *_PY39_313),
    TorchRelease("2.6", (_CU118, _CU124, _CU126), (12, 4), *_PY39_313),
    TorchRelease("2.7", (_CU118, _CU126, _CU128_27), (12, 6), *_PY39_313),
    TorchRelease("2.8", (_CU126, _CU128, _CU129), (12, 8), *_PY39_313),
    TorchRelease("2.9", (_CU126, _CU128, _CU130), (12, 8), *_PY310_314),
    TorchRelease("2.10", (_CU126, _CU128, _CU130), (12, 8), *_PY310_314),
    TorchRelease("2.11", (_CU126, _CU128, _CU130), (13, 0), *_PY310_314),
    TorchRelease("2.12", (_CU126, _CU130, _CU132), (13, 0), *_PY310_314),
    TorchRelease("2.13", (_CU126, _CU130, _CU132), (13, 0), *_PY310_314),
    TorchRelease("2.14", (_CU126, _CU130, _CU132), (13, 2), *_PY310_314),
    TorchRelease("2.15", (_CU130, _CU132), (13, 2), *_PY310_314),
)

NEWEST = RELEASES[-1]

# Pythons the current torch releases publish wheels for (64-bit only).
PYTHON_SUPPORTED = (NEWEST.python_min, NEWEST.python_max)

# Intel Macs stop at this release (wheels for Python 3.8-3.12, built against NumPy 1).
INTEL_MAC_TORCH = "2.2.2"
INTEL_MAC_PYTHON_MAX = (3, 12)

# Apple Silicon wheels need macOS 14+ for the MPS backend.
MPS_MACOS_MIN = (14, 0)

# Torch-wheel copies on mirrors: name -> (how pip reads it, URL pattern for a variant).
# "find-links" is a flat listing (pip -f); "index" a PEP 503 index (pip --index-url).
TORCH_WHEEL_MIRRORS: dict[str, tuple[str, str]] = {
    "aliyun": ("find-links", "https://mirrors.aliyun.com/pytorch-wheels/{variant}/"),
    "sjtu": ("index", "https://mirror.sjtu.edu.cn/pytorch-wheels/{variant}/"),
}

# Compute capability by product name, for drivers too old to answer `compute_cap` (before R510).
# Longest matching fragment wins; checked against NVIDIA's CUDA GPU list.
CAPABILITY_BY_NAME: tuple[tuple[str, str], ...] = (
    ("GTX 9", "5.2"), ("GTX TITAN X", "5.2"), ("TITAN X (Pascal)", "6.1"), ("TITAN Xp", "6.1"),
    ("GTX 10", "6.1"), ("P100", "6.0"), ("P40", "6.1"), ("P4", "6.1"), ("MX1", "6.1"),
    ("MX2", "6.1"), ("MX3", "6.1"), ("MX4", "6.1"), ("MX5", "7.5"),
    ("TITAN V", "7.0"), ("V100", "7.0"), ("GTX 16", "7.5"), ("RTX 20", "7.5"), ("TITAN RTX", "7.5"),
    ("T4", "7.5"), ("Quadro RTX", "7.5"), ("A100", "8.0"), ("A30", "8.0"), ("RTX 30", "8.6"),
    ("A10", "8.6"), ("A40", "8.6"), ("RTX A", "8.6"), ("RTX 40", "8.9"), ("L4", "8.9"),
    ("L40", "8.9"), ("RTX 2000 Ada", "8.9"), ("RTX 4000 Ada", "8.9"), ("RTX 6000 Ada", "8.9"),
    ("H100", "9.0"), ("H200", "9.0"), ("GH200", "9.0"), ("B100", "10.0"), ("B200", "10.0"),
    ("GB200", "10.0"), ("RTX 50", "12.0"), ("RTX PRO", "12.0"),
)


def capability_text(cap: Optional[tuple[int, int]]) -> Optional[str]:
    """(8, 6) -> "8.6"."""
    return None if cap is None else f"{cap[0]}.{cap[1]}"


def capability_from_name(name: str) -> Optional[str]:
    """The compute capability of a GPU known by its product name, or None."""
    best = ""
    result = None
    for fragment, cap in CAPABILITY_BY_NAME:
        if fragment.lower() in name.lower() and len(fragment) > len(best):
            best, result = fragment, cap
    return result


def runs_on(archs: Sequence[object], capability: tuple[int, int]) -> bool:
    """Whether code built for `archs` (sm_XY, compute_XY or tuples) runs on a card of `capability`.

    A cubin for sm_M.n runs on M.m when m >= n; PTX (compute_XY) is compiled on the fly for any
    newer card."""
    for entry in archs:
        cap = parse_capability(entry)
        if cap is None:
            continue
        is_ptx = isinstance(entry, str) and entry.lower().startswith("compute_")
        if is_ptx and cap <= capability:
            return True
        if cap[0] == capability[0] and cap[1] <= capability[1]:
            return True
    return False


def parse_version(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """"570.26" or "12.8" -> (570, 26); None for anything else."""
    if not text:
        return None
    parts = []
    for piece in str(text).strip().split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def driver_floor(cuda_major: int, platform: str) -> Optional[str]:
    """The oldest driver that runs any wheel of CUDA `cuda_major`.x (minor-version compatibility)."""
    floor = FAMILY_FLOOR.get(cuda_major)
    if floor is None:
        return None
    return floor[1] if platform == "win32" else floor[0]


def driver_for_cuda(cuda: tuple[int, int], platform: str) -> Optional[str]:
    """The oldest driver that fully supports CUDA `cuda` (no compatibility mode needed)."""
    row = DRIVER_FOR_CUDA.get(cuda)
    if row is None:
        return None
    return (row[1] or row[0]) if platform == "win32" else row[0]


def driver_runs(
    variant_cuda: tuple[int, int],
    *,
    driver_version: Optional[str],
    driver_cuda: Optional[str],
    platform: str,
) -> Optional[bool]:
    """Whether a driver can run a wheel built for `variant_cuda`: its family floor is met.

    Uses the CUDA version the driver reports when known, else the driver version; None when
    neither is known."""
    cuda = parse_version(driver_cuda)
    if cuda is not None:
        return cuda[0] >= variant_cuda[0]
    driver = parse_version(driver_version)
    floor = parse_version(driver_floor(variant_cuda[0], platform))
    if driver is None or floor is None:
        return None
    return driver >= floor


def driver_fully_supports(
    variant_cuda: tuple[int, int],
    *,
    driver_version: Optional[str],
    driver_cuda: Optional[str],
    platform: str,
) -> Optional[bool]:
    """Whether the driver supports `variant_cuda` itself, not only through compatibility mode."""
    cuda = parse_version(driver_cuda)
    if cuda is not None:
        return cuda[:2] >= variant_cuda
    driver = parse_version(driver_version)
    needed = parse_version(driver_for_cuda(variant_cuda, platform))
    if driver is None or needed is None:
        return None
    return driver >= needed


def all_variant_names() -> list[str]:
    """Every CUDA variant any known torch release publishes, oldest CUDA first."""
    names = {v.name: v.cuda for r in RELEASES for v in r.variants}
    return sorted(names, key=lambda n: names[n])


def release(version: str) -> Optional[TorchRelease]:
    """The table row for torch `version` ("2.7" or "2.7.1+cu118"), or None."""
    key = parse_version(version)
    if key is None or len(key) < 2:
        return None
    return next((r for r in RELEASES if r.key == key[:2]), None)
