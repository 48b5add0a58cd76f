"""The torch install command that fits this machine, and why.

Rule: the newest torch release that has a build this machine can run; within it, the newest CUDA
variant the driver supports outright, else one it runs through CUDA minor-version compatibility;
"runs" means the driver meets the variant's family floor and the wheel carries kernels for every
card. When no release fits, the CPU build. Facts come from `cuda_tables`; this module only decides.
"""

from __future__ import annotations

import platform as platform_module
import sys
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

from cnnsetup import shell as shell_module
from cnnsetup.errors import UsageError
from cnnsetup.i18n import _
from cnnsetup.machine import cuda_tables as tables
from cnnsetup.machine.cuda_tables import TorchRelease, Variant

NO_DRIVER, NOT_LOADED = "no_driver", "not_loaded"  # Machine.driver_problem


@dataclass
class Gpu:
    """A card as far as the choice needs it."""

    name: str
    compute_cap: Optional[str]  # "8.6", None when unknown


@dataclass
class Machine:
    """What the choice depends on. Build it from facts with `machine_from_facts`."""

    platform: str = sys.platform
    arch: str = field(default_factory=platform_module.machine)
    python: tuple[int, int] = tuple(sys.version_info[:2])  # type: ignore[assignment]
    python_bits: int = 64
    gpus: Sequence[Gpu] = ()
    nvidia_found: bool = False
    driver_version: Optional[str] = None
    driver_cuda: Optional[str] = None
    nvidia_error: Optional[str] = None  # nvidia-smi failed: its own words
    installed_torch: Optional[str] = None  # "2.13.0+cpu"
    macos_version: Optional[str] = None
    python_path: Optional[str] = None  # the interpreter the commands install into (full path)
    shell: str = shell_module.POSIX  # the shell the commands are quoted for
    nvidia_hardware: int = 0  # NVIDIA display devices the OS lists, with or without driver
    # Why the NVIDIA driver cannot be used although a card is there: NO_DRIVER (not installed)
    # or NOT_LOADED (installed, but nvidia-smi cannot reach it); None when it works or no card.
    driver_problem: Optional[str] = None
    os_version: Optional[str] = None  # "Ubuntu 24.04.1 LTS"

    @property
    def ubuntu(self) -> bool:
        """Ubuntu and its derivatives (the `ubuntu-drivers` tool)."""
        return "ubuntu" in (self.os_version or "").lower()

    def pip(self, *args: str) -> str:
        """`"<python>" -m pip ARGS` for this machine's interpreter and shell."""
        return shell_module.python_command(self.python_path, ["-m", "pip", *args], self.shell)


@dataclass
class Recommendation:
    """The command, what it installs, and the reasons for it (translated text)."""

    variant: str  # "cu128", "cpu" (CPU index), "pypi" (PyPI's own wheel)
    cuda: Optional[str]  # "12.8"; None for CPU/MPS builds
    torch_version: Optional[str]  # the release line the tables expect pip to pick: "2.7"
    torch_spec: str  # "torch", "torch<2.8", "torch==2.2.2"
    index_url: Optional[str]  # where torch comes from (None: pip's configured index, PyPI)
    find_links: Optional[str] = None  # a flat listing (aliyun's pytorch-wheels)
    deps_index_url: Optional[str] = None  # the mirror's PyPI index for the dependencies
    commands: list[str] = field(default_factory=list)
    uninstall: Optional[str] = None  # the reminder: remove a CPU-only torch first
    uninstall_first: bool = False  # the installed torch is a different build: step one removes it
    driver_first: Optional[str] = None  # the NVIDIA driver must be repaired before CUDA works
    argvs: list[list[str]] = field(default_factory=list)  # `commands` as argument lists
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mirror: Optional[str] = None

    @property
    def command(self) -> str:
        """Every command, one per line, in order."""
        return "\n".join(self.commands)

    def to_json(self) -> dict:
        """What `torch-command --json` prints (plus the machine it was made for)."""
        return {
            "command": self.command,
            "commands": list(self.commands),
            "index_url": self.index_url,
            "find_links": self.find_links,
            "deps_index_url": self.deps_index_url,
            "variant": self.variant,
            "cuda": self.cuda,
            "torch_version": self.torch_version,
            "torch_spec": self.torch_spec,
            "uninstall": self.uninstall,
            "uninstall_first": self.uninstall_first,
            "driver_first": self.driver_first,
            "mirror": self.mirror,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
        }


def check_options(cuda: str, mirror: Optional[str]) -> None:
    """Raise UsageError for a `--cuda` or `--mirror` value that names nothing known (before any
    probe runs)."""
    requested = (cuda or "auto").strip().lower()
    if requested not in ("auto", "cpu"):
        _variant_name(requested)
    _mirror(mirror)


def _variant_name(requested: str) -> str:
    name = requested if requested.startswith("cu") else "cu" + requested.replace(".", "")
    known = tables.all_variant_names()
    if name not in known:
        raise UsageError(_("Unknown CUDA version {cuda!r}. Known: {known}, or cpu, or auto.").format(
            cuda=requested, known=", ".join(f"{n[2:-1]}.{n[-1]}" for n in known)))
    return name


def recommend(machine: Machine, cuda: str = "auto", mirror: Optional[str] = None) -> Recommendation:
    """The install command for `machine`; `cuda` is "auto", "cpu" or a CUDA version ("12.8")."""
    requested = (cuda or "auto").strip().lower()
    mirror_obj = _mirror(mirror)
    if machine.platform == "darwin":
        if requested not in ("auto", "cpu"):
            raise UsageError(_("macOS has no CUDA: use --cuda auto or --cuda cpu."))
        rec = _macos(machine)
    elif requested == "cpu":
        rec = _cpu(machine, [_("The CPU build was asked for.")])
    elif requested == "auto":
        rec = _auto(machine)
    else:
        rec = _forced(machine, requested)
    if machine.python_bits != 64:
        rec.warnings.append(_("PyTorch publishes no wheels for 32-bit Python: install a 64-bit "
                              "Python first, or pip will say \"from versions: none\"."))
    _python_warning(machine, rec)
    if machine.driver_problem and not machine.gpus and rec.driver_first is None and rec.cuda:
        rec.driver_first = driver_fix(machine)[1] or driver_fix(machine)[0]
        rec.warnings.append(_("Fix the NVIDIA driver first: {fix}").format(
            fix=driver_fix(machine)[0]))
    _assemble(machine, rec, mirror_obj)
    return rec


# ------------------------------------------------------------------ choosing


def _macos(machine: Machine) -> Recommendation:
    if machine.arch in ("x86_64", "i386", "AMD64"):
        rec = Recommendation("pypi", None, tables.INTEL_MAC_TORCH,
                             f"torch=={tables.INTEL_MAC_TORCH}", None)
        rec.reasons.append(_("Intel Macs stop at torch {version}; it was built against NumPy 1, "
                             "so NumPy stays below 2.").format(version=tables.INTEL_MAC_TORCH))
        if machine.python > tables.INTEL_MAC_PYTHON_MAX:
            rec.warnings.append(_("torch {version} has wheels up to Python {python}: use that "
                                  "Python or older.").format(
                version=tables.INTEL_MAC_TORCH, python=_dotted(tables.INTEL_MAC_PYTHON_MAX)))
        return rec
    rec = Recommendation("pypi", None, None, "torch", None)
    rec.reasons.append(_("On Apple Silicon, PyPI's torch uses the GPU through MPS (macOS 14 or "
                         "newer); there is no CUDA on a Mac."))
    version = tables.parse_version(machine.macos_version)
    if version is not None and version[:2] < tables.MPS_MACOS_MIN:
        rec.warnings.append(_("This is macOS {version}: MPS needs macOS {needed} or newer, so torch "
                              "will run on the CPU until you update.").format(
            version=machine.macos_version, needed=_dotted(tables.MPS_MACOS_MIN)))
    return rec


def _cpu(machine: Machine, reasons: list[str]) -> Recommendation:
    release = _newest_for_python(machine)
    if machine.platform == "win32":
        rec = Recommendation("pypi", None, release.version, "torch", None, reasons=reasons)
        rec.reasons.append(_("On Windows, PyPI's torch is the CPU build already."))
    else:
        rec = Recommendation("cpu", None, release.version, "torch",
                             f"{tables.TORCH_INDEX}/cpu", reasons=reasons)
        rec.reasons.append(_("On Linux, PyPI's torch bundles CUDA (several GB); the CPU index "
                             "serves the small CPU build."))
    return rec


def _auto(machine: Machine) -> Recommendation:
    if not machine.gpus and (machine.driver_problem or machine.nvidia_hardware):
        return _driver_broken(machine)
    if not machine.nvidia_found:
        return _cpu(machine, [_("No NVIDIA driver found (no nvidia-smi): the CPU build is the one "
                                "this machine can use.")])
    if not machine.gpus and machine.nvidia_error:
        return _cpu(machine, [_("nvidia-smi did not answer properly ({error}); the CPU build is "
                                "chosen until it does.").format(error=machine.nvidia_error)])
    if not machine.gpus:
        return _cpu(machine, [_("nvidia-smi lists no GPU: the CPU build is the one this machine "
                                "can use.")])
    reasons = _hardware_reasons(machine)
    releases = _releases_for_python(machine)
    choice = _best(machine, releases, require_all_gpus=True) or _best(
        machine, releases, require_all_gpus=False)
    if choice is None:
        reasons.append(_("No CUDA build of any torch release can run here (the driver is too old "
                         "or the card too old for current wheels)."))
        rec = _cpu(machine, reasons)
        _driver_hint(machine, releases, rec)
        return rec
    release, variant = choice
    rec = _cuda_recommendation(machine, releases, release, variant, reasons)
    _driver_hint(machine, releases, rec)
    return rec


def _driver_broken(machine: Machine) -> Recommendation:
    """A card is there but its driver is missing or not loaded: keep (or choose) the CUDA build
    that card will run once the driver works, and say the driver comes first. A CPU build here
    would throw away a working CUDA install for a problem that is not torch's."""
    if machine.driver_problem == NOT_LOADED:
        reason = _("An NVIDIA card is present and its driver is installed, but not loaded "
                   "(nvidia-smi cannot talk to it): torch cannot use the card until the driver "
                   "is repaired. The CUDA build stays the right one.")
    elif machine.driver_problem is None:
        reason = _("An NVIDIA card is present, but nvidia-smi did not answer properly ({error}): "
                   "the CUDA build stays the right one once the driver answers.").format(
            error=machine.nvidia_error or "?")
    else:
        reason = _("An NVIDIA card is present but no NVIDIA driver is installed: install the "
                   "driver first. The CUDA build is the one this card will use.")
    releases = _releases_for_python(machine)
    installed = installed_build(machine.installed_torch, machine.platform, machine.arch)
    # The installed CUDA build when there is one (in the newest release that has it), else the
    # newest release's newest CUDA: a current driver runs it.
    having = [r for r in releases if installed and r.variant(installed)]
    release = having[-1] if having else releases[-1]
    variant = release.variant(installed) if having and installed else None
    if variant is None:
        variant = max(release.variants, key=lambda v: v.cuda)
    rec = _cuda_recommendation(machine, releases, release, variant, [reason])
    rec.driver_first = driver_fix(machine)[1] or driver_fix(machine)[0]
    rec.warnings.append(_("Fix the NVIDIA driver first: {fix}").format(fix=driver_fix(machine)[0]))
    return rec


def driver_fix(machine: Machine) -> tuple[str, Optional[str]]:
    """(what to do in words, a command to paste or None) for the machine's driver problem."""
    windows = machine.platform == "win32"
    if machine.driver_problem != NO_DRIVER:  # not loaded, or not answering
        if windows:
            return (_("reinstall the NVIDIA driver from {url} (choose \"Clean installation\") "
                      "and restart Windows.").format(url=DRIVER_URL), None)
        return (_("restart the computer (a driver install or a kernel update needs it). If it "
                  "still fails, `sudo modprobe nvidia` names the cause: \"Key was rejected by "
                  "service\" means Secure Boot blocks the driver (enroll its key with mokutil or "
                  "turn Secure Boot off); \"Module nvidia not found\" means the driver was not "
                  "built for the running kernel (reinstall the driver)."),
                "sudo modprobe nvidia && nvidia-smi")
    if windows:
        return (_("install the NVIDIA driver for this card from {url}, then restart.").format(
            url=DRIVER_URL), None)
    return (_("install the NVIDIA driver (Ubuntu: `sudo ubuntu-drivers install`; other systems: "
              "their nvidia-driver package, or {url}), then restart.").format(url=DRIVER_URL),
            "sudo ubuntu-drivers install" if machine.ubuntu else None)


DRIVER_URL = "https://www.nvidia.com/Download/index.aspx"


def _forced(machine: Machine, requested: str) -> Recommendation:
    name = _variant_name(requested)
    releases = [r for r in _releases_for_python(machine) if r.variant(name)]
    if not releases:
        releases = [r for r in tables.RELEASES if r.variant(name)]
    fitting = [r for r in releases if all(_card_runs(r.variant(name), g) for g in machine.gpus)]
    release = (fitting or releases)[-1]
    variant = release.variant(name)
    assert variant is not None
    reasons = _hardware_reasons(machine) + [_("CUDA {cuda} was asked for.").format(cuda=variant.cuda_text)]
    rec = _cuda_recommendation(machine, releases, release, variant, reasons)
    if not fitting and machine.gpus:
        rec.warnings.append(_("No torch release with {variant} has kernels for {gpu}.").format(
            variant=name, gpu=_gpu_list(machine)))
    runs = _driver_runs(machine, variant)
    if runs is False:
        rec.warnings.append(_("Driver {driver} cannot run CUDA {cuda} builds: it needs driver "
                              "{needed} or newer.").format(
            driver=machine.driver_version or "?", cuda=variant.cuda_text,
            needed=tables.driver_floor(variant.cuda[0], machine.platform) or "?"))
    return rec


def _best(machine: Machine, releases: Sequence[TorchRelease],
          require_all_gpus: bool) -> Optional[tuple[TorchRelease, Variant]]:
    """Newest release first; in it, a variant the driver supports outright beats one it runs
    through compatibility, and a newer CUDA beats an older one."""
    gpus = list(machine.gpus)
    for release in reversed(releases):
        candidates = []
        for variant in sorted(release.variants, key=lambda v: v.cuda, reverse=True):
            if _driver_runs(machine, variant) is False:
                continue
            check = all if require_all_gpus else any
            if gpus and not check(_card_runs(variant, g) for g in gpus):
                continue
            full = tables.driver_fully_supports(
                variant.cuda, driver_version=machine.driver_version,
                driver_cuda=machine.driver_cuda, platform=machine.platform)
            candidates.append((bool(full), variant))
        if candidates:
            full_first = sorted(candidates, key=lambda c: (c[0], c[1].cuda), reverse=True)
            return release, full_first[0][1]
    return None


def _cuda_recommendation(machine: Machine, releases: Sequence[TorchRelease],
                         release: TorchRelease, variant: Variant,
                         reasons: list[str]) -> Recommendation:
    # pip picks the newest release on the variant's index that has a wheel for this Python;
    # when that one is newer than the choice (it dropped this card), cap the version.
    newer = [r for r in releases if r.key > release.key and r.variant(variant.name)]
    spec = "torch"
    if newer:
        following = next(r for r in tables.RELEASES if r.key > release.key)
        spec = f"torch<{following.version}"
        reasons.append(_("Newer torch releases have no {variant} build with kernels for this card; "
                         "torch {version} is the newest that has one.").format(
            variant=variant.name, version=release.version))
    elif release is not releases[-1]:
        reasons.append(_("Newer torch releases have no build that this driver and this card can "
                         "both run; torch {version} is the newest that fits.").format(
            version=release.version))
    full = tables.driver_fully_supports(variant.cuda, driver_version=machine.driver_version,
                                        driver_cuda=machine.driver_cuda, platform=machine.platform)
    if full is None:
        reasons.append(_("Chosen: {variant} (CUDA {cuda}) of torch {version}.").format(
            variant=variant.name, cuda=variant.cuda_text, version=release.version))
        if not machine.nvidia_found:
            rec_warning = _("No NVIDIA driver found: a CUDA build runs on the CPU only here.")
            reasons.append(rec_warning)
    elif full:
        reasons.append(_("Chosen: {variant} (CUDA {cuda}) of torch {version}, the newest CUDA "
                         "this driver supports in that release.").format(
            variant=variant.name, cuda=variant.cuda_text, version=release.version))
    else:
        reasons.append(_("Chosen: {variant} (CUDA {cuda}) of torch {version}; the driver runs it "
                         "through CUDA minor-version compatibility (driver {floor} or newer).").format(
            variant=variant.name, cuda=variant.cuda_text, version=release.version,
            floor=tables.driver_floor(variant.cuda[0], machine.platform)))
    if machine.platform == "win32":
        reasons.append(_("On Windows, PyPI and its mirrors serve only CPU builds of torch: the "
                         "CUDA build comes from PyTorch's own index."))
    rec = Recommendation(variant.name, variant.cuda_text, release.version, spec,
                         f"{tables.TORCH_INDEX}/{variant.name}", reasons=reasons)
    return rec


def _driver_hint(machine: Machine, releases: Sequence[TorchRelease], rec: Recommendation) -> None:
    """When a newer driver would allow a newer torch build, say which driver."""
    if not machine.gpus:
        return
    unlimited = replace(machine, driver_version=None, driver_cuda="99.0")
    better = _best(unlimited, releases, require_all_gpus=True)
    if better is None:
        return
    release = better[0]
    current = tables.release(rec.torch_version or "")
    if rec.cuda and current is not None and release.key <= current.key:
        return
    # The variant of that release needing the oldest driver.
    variant = min((v for v in release.variants if all(_card_runs(v, g) for g in machine.gpus)),
                  key=lambda v: v.cuda)
    rec.reasons.append(_("A driver {needed} or newer would allow torch {version} with "
                         "{variant}.").format(
        needed=tables.driver_floor(variant.cuda[0], machine.platform), version=release.version,
        variant=variant.name))


def _hardware_reasons(machine: Machine) -> list[str]:
    reasons = []
    if machine.driver_version or machine.driver_cuda:
        reasons.append(_("Driver {driver} supports CUDA up to {cuda}.").format(
            driver=machine.driver_version or "?", cuda=machine.driver_cuda or "?"))
    for gpu in machine.gpus:
        cap = tables.parse_capability(gpu.compute_cap)
        if cap:
            reasons.append(_("{gpu} is compute capability {cap} (sm_{sm}).").format(
                gpu=gpu.name, cap=gpu.compute_cap, sm=f"{cap[0]}{cap[1]}"))
        else:
            reasons.append(_("The compute capability of {gpu} is unknown; assumed supported.").format(
                gpu=gpu.name))
    return reasons


def _python_warning(machine: Machine, rec: Recommendation) -> None:
    release = tables.release(rec.torch_version or "")
    if release is None:
        return
    if not (release.python_min <= machine.python <= release.python_max):
        rec.warnings.append(_("torch {version} has wheels for Python {low} to {high}, and this is "
                              "Python {python}: pip would say \"from versions: none\".").format(
            version=release.version, low=_dotted(release.python_min),
            high=_dotted(release.python_max), python=_dotted(machine.python)))


# ------------------------------------------------------------------ the command


def _assemble(machine: Machine, rec: Recommendation, mirror) -> None:
    """Turn the choice into commands: straight from the index, or through a mirror."""
    packages = [rec.torch_spec]
    if rec.torch_spec == f"torch=={tables.INTEL_MAC_TORCH}":
        packages.append("numpy<2")
    argvs: list[list[str]] = []
    python = machine.python_path or "python"

    def add(*args: str) -> None:
        argvs.append([python, "-m", "pip", *args])

    uninstall = machine.pip("uninstall", "-y", "torch")
    if rec.variant.startswith("cu"):
        rec.uninstall = uninstall
    installed = installed_build(machine.installed_torch, machine.platform, machine.arch)
    if machine.installed_torch and installed != rec.variant and rec.variant != "pypi":
        rec.uninstall_first = True
        rec.uninstall = uninstall
        add("uninstall", "-y", "torch")
        rec.reasons.append(_("The installed torch {version} is another build; pip would keep it "
                             "(\"Requirement already satisfied\"), so remove it first.").format(
            version=machine.installed_torch))
    elif machine.installed_torch and installed == rec.variant:
        rec.reasons.append(_("The installed torch {version} is already this build.").format(
            version=machine.installed_torch))
    install = ["install", *packages]
    if mirror is None:
        add(*install, *(["--index-url", rec.index_url] if rec.index_url else []))
    else:
        rec.mirror = mirror.name
        rec.deps_index_url = mirror.pypi
        for step in _mirror_commands(machine, rec, mirror, install):
            add(*step)
    rec.argvs = argvs
    rec.commands = [shell_module.python_command(machine.python_path, a[1:], machine.shell)
                    for a in argvs]


def _mirror_commands(machine: Machine, rec: Recommendation, mirror,
                     install: list[str]) -> list[list[str]]:
    deps = [*install, "-i", mirror.pypi]
    if rec.variant == "pypi":
        rec.index_url = mirror.pypi
        return [deps]
    on_pypi = (rec.variant.startswith("cu13") and rec.torch_spec == "torch"
               and machine.platform.startswith("linux") and machine.arch in ("x86_64", "AMD64"))
    if on_pypi:
        rec.index_url = mirror.pypi
        rec.reasons.append(_("PyPI's Linux torch already bundles CUDA 13, so {mirror}'s PyPI index "
                             "serves the right build.").format(mirror=mirror.name))
        return [deps]
    wheel_mirror = tables.TORCH_WHEEL_MIRRORS.get(mirror.name)
    if wheel_mirror is None:
        torch_step = [*install, "--no-deps", "--index-url", rec.index_url]
        rec.reasons.append(_("{mirror} has no copy of PyTorch's wheel index: torch itself comes "
                             "from {url}, its dependencies from {mirror}.").format(
            mirror=mirror.name, url=rec.index_url))
    else:
        how, pattern = wheel_mirror
        url = pattern.format(variant=rec.variant)
        if how == "find-links":
            rec.find_links, rec.index_url = url, None
            torch_step = [*install, "--no-deps", "--no-index", "-f", url]
        else:
            rec.index_url = url
            torch_step = [*install, "--no-deps", "--index-url", url]
        rec.reasons.append(_("torch comes from {mirror}'s copy of PyTorch's wheels, its "
                             "dependencies from {mirror}'s PyPI index.").format(mirror=mirror.name))
    # Two steps, so that a newer (CPU) torch on the PyPI mirror can never win over the build
    # chosen here: the second step sees torch installed and only adds what it depends on.
    return [torch_step, deps]


def installed_build(version: Optional[str], platform: str, arch: str = "x86_64") -> Optional[str]:
    """Which build an installed torch is, from its version: "cpu", "cu128", or "pypi"."""
    if not version:
        return None
    local = version.partition("+")[2].lower()
    if local:
        return local if local.startswith(("cu", "cpu", "rocm", "xpu")) else local
    if platform.startswith("linux") and arch in ("x86_64", "AMD64"):
        release = tables.release(version)
        if release is not None:
            cuda = release.pypi_linux_cuda
            return f"cu{cuda[0]}{cuda[1]}"
    return "pypi"


def _dotted(version: Sequence[int]) -> str:
    return ".".join(str(p) for p in version)


def _gpu_list(machine: Machine) -> str:
    return ", ".join(f"{g.name} ({g.compute_cap or '?'})" for g in machine.gpus)


def _card_runs(variant: Optional[Variant], gpu: Gpu) -> bool:
    if variant is None:
        return False
    cap = tables.parse_capability(gpu.compute_cap)
    return True if cap is None else tables.runs_on(variant.archs, cap)


def _driver_runs(machine: Machine, variant: Variant) -> Optional[bool]:
    return tables.driver_runs(variant.cuda, driver_version=machine.driver_version,
                              driver_cuda=machine.driver_cuda, platform=machine.platform)


def _releases_for_python(machine: Machine) -> list[TorchRelease]:
    """The releases pip would consider for this Python (all of them when none has its wheels)."""
    fitting = [r for r in tables.RELEASES if r.python_min <= machine.python <= r.python_max]
    return fitting or list(tables.RELEASES)


def _newest_for_python(machine: Machine) -> TorchRelease:
    return _releases_for_python(machine)[-1]


def _mirror(name: Optional[str]):
    if not name:
        return None
    from cnnsetup.mirror import registry

    mirror = registry.get(name)
    if mirror is None:
        raise UsageError(registry.unknown_name_message(name))
    return mirror


# ------------------------------------------------------------------ the machine


def driver_problem(nvidia) -> Optional[str]:
    """NO_DRIVER, NOT_LOADED or None, from `gpu.NvidiaFacts` (nvidia-smi plus the hardware)."""
    hardware = getattr(nvidia, "hardware", None)
    present = bool(hardware and hardware.present)
    if nvidia.gpus:
        return None
    if getattr(nvidia, "driver_not_loaded", False):
        return NOT_LOADED
    if present and not nvidia.found:
        # A kernel module that is loaded works without nvidia-smi (a minimal driver install).
        return None if hardware.module_loaded else NO_DRIVER
    return None


def machine_from_facts(facts) -> Machine:
    """The `Machine` for a `cnnsetup.machine.facts.Facts` (what `info` collected)."""
    version = tables.parse_version(facts.python.version) or (3, 0)
    hardware = getattr(facts.nvidia, "hardware", None)
    return Machine(
        platform=facts.platform,
        arch=facts.system.arch,
        python=(version + (0,))[:2],  # type: ignore[arg-type]
        python_bits=facts.python.bits,
        gpus=[Gpu(g.name, g.compute_cap) for g in facts.nvidia.gpus],
        nvidia_found=facts.nvidia.found,
        driver_version=facts.nvidia.driver_version,
        driver_cuda=facts.nvidia.cuda_version,
        nvidia_error=facts.nvidia.error,
        installed_torch=facts.torch.version if facts.torch.installed else None,
        macos_version=facts.system.os_version if facts.platform == "darwin" else None,
        python_path=facts.python.executable or None,
        shell=getattr(facts, "shell", shell_module.POSIX),
        nvidia_hardware=len(hardware.devices) if hardware else 0,
        driver_problem=driver_problem(facts.nvidia),
        os_version=facts.system.os_version,
    )


def machine_here(*, platform: Optional[str] = None, smi_timeout: Optional[float] = None,
                 env=None) -> Machine:
    """The `Machine` for this computer, without importing torch: nvidia-smi and the NVIDIA
    hardware, and the installed torch's version from its metadata."""
    import os
    import struct

    from cnnsetup.machine import facts as facts_module
    from cnnsetup.machine import gpu
    from cnnsetup.machine.system import _os_version

    env = os.environ if env is None else env
    platform = facts_module.host_platform(env) if platform is None else platform
    nvidia = facts_module.nvidia_here(platform, env, smi_timeout or gpu.SMI_TIMEOUT_S)
    try:
        from importlib import metadata

        installed: Optional[str] = metadata.version("torch")
    except Exception:  # not installed, or broken metadata
        installed = None
    hardware = nvidia.hardware
    return Machine(
        platform=platform,
        arch=platform_module.machine(),
        python=tuple(sys.version_info[:2]),  # type: ignore[arg-type]
        python_bits=struct.calcsize("P") * 8,
        gpus=[Gpu(g.name, g.compute_cap) for g in nvidia.gpus],
        nvidia_found=nvidia.found,
        driver_version=nvidia.driver_version,
        driver_cuda=nvidia.cuda_version,
        nvidia_error=nvidia.error,
        installed_torch=installed,
        macos_version=platform_module.mac_ver()[0] or None if platform == "darwin" else None,
        python_path=sys.executable,
        shell=shell_module.detect(platform, env),
        nvidia_hardware=len(hardware.devices) if hardware else 0,
        driver_problem=driver_problem(nvidia),
        os_version=_os_version(platform),
    )
