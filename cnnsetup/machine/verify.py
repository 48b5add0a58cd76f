"""`cnnsetup verify`: the machine's facts and findings, then proof that the stack really works.

One torch worker does everything that needs torch, in the user's own environment (the same
interpreter, PYTHONPATH and environment variables as their programs): the probe, then per device
the operation-level proof (`cnnsetup.machine.proof`: every layer forward and backward, the
optimizers and the checkpoint, in float32 against their definitions) and the training of the
reference network with torch.optim (with its checkpoint round trip and, on a GPU, agreement with
the CPU). A task that hangs or crashes the worker becomes a failed check with its text; a task
still making progress when its time limit runs out is "too slow", not hung. A new worker then
runs the tasks still to do, so one bad device never hides the others.
"""

from __future__ import annotations

import os
import platform as platform_module
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from cnnsetup.i18n import _, using_language
from cnnsetup.machine import gpu as gpu_module
from cnnsetup.machine.facts import Facts, collect, facts_to_json
from cnnsetup.machine.findings import Finding, evaluate
from cnnsetup.machine.torch_probe import WorkerRun, WorkerSession

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps", "all")
TRAIN_TIMEOUT_S = 120.0  # per task; the smoke run takes about a second on a laptop CPU
SLOW_FIX_TIMEOUT_S = 300  # the --timeout suggested when a run was slow, not hung
OPS_TIMEOUT_S = 120.0  # the operation checks: about a second, most of it the first torch.optim


@dataclass
class VerifyOptions:
    """What `cnnsetup verify` was asked to do."""

    device: str = "auto"
    epochs: Optional[int] = None  # None: the smoke configuration's
    seed: int = 0
    ddp: Optional[int] = None  # processes for the DistributedDataParallel check
    timeout: float = TRAIN_TIMEOUT_S  # per training run (and the operation checks, if longer)
    python: Optional[str] = None  # the interpreter to verify (default: this one)


@dataclass
class VerifyResult:
    """What was found and measured. The checks are worded when asked for (`checks()`), so the
    same run can be shown in the user's language and reported in English."""

    facts: Facts
    devices: list[str]
    replies: dict[str, dict]
    explicit: bool  # the devices were asked for by name: one that is missing fails
    ddp: Any = None  # cnnsetup.machine.ddp.DdpResult, when --ddp ran
    ddp_requested: Optional[int] = None
    duration_s: float = 0.0

    def checks(self) -> list[Finding]:
        """Every check, in the current language: the machine findings, then the proof."""
        findings = evaluate(self.facts)
        torch_ok = bool(self.facts.torch.importable)
        checks: list[Finding] = []
        for device in self.devices:
            # A reinstall is the fix on a GPU (a CPU-only or mismatched build); without an
            # NVIDIA card, asking for CUDA was the mistake: the driver, or verify the CPU.
            fix = _reinstall_fix(findings) if device == "cpu" or self.facts.nvidia.gpus or \
                device == "mps" or self.facts.torch.devices else _no_gpu_fix(findings)
            checks += _ops_checks(device, self.replies[f"ops:{device}"], self.explicit,
                                  torch_ok, fix)
            checks += _train_checks(device, self.replies[f"train:{device}"], self.explicit,
                                    torch_ok, fix)
        if self.ddp_requested:
            checks.append(_ddp_finding(self.ddp, self.ddp_requested, self.devices))
        return findings + checks

    @property
    def training(self) -> list[dict]:
        """Each training run's figures (the same in every language)."""
        runs = []
        for device in self.devices:
            run = _training_run(device, self.replies[f"train:{device}"], self.facts)
            if run is not None:
                runs.append(run)
        if self.ddp is not None:
            runs.append(_ddp_run(self.ddp, self.ddp_requested))
        return runs

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks())

    def to_json(self, mirror: Optional[Mapping[str, Optional[str]]] = None, kind: str = "verify") -> dict:
        """The report: always in English, whatever language the run was shown in."""
        with using_language("en"):
            checks = self.checks()
        report = facts_to_json(self.facts, checks, kind=kind, training=self.training, mirror=mirror)
        report["duration_s"] = self.duration_s
        return report


def plan_devices(choice: str, nvidia_gpus: int, *, platform: str = sys.platform,
                 machine: Optional[str] = None) -> list[str]:
    """The devices to prove, from what nvidia-smi lists (torch's own view is checked in the
    worker: a device torch does not see is skipped there, or failed when asked for by name)."""
    machine = (machine or platform_module.machine()).lower()
    apple_silicon = platform == "darwin" and machine in ("arm64", "aarch64")
    cuda = [f"cuda:{i}" for i in range(nvidia_gpus)]
    if choice == "cpu":
        return ["cpu"]
    if choice == "cuda":
        return cuda or ["cuda:0"]
    if choice == "mps":
        return ["mps"]
    devices = ["cpu"] + cuda
    if apple_silicon or (choice == "all" and platform == "darwin"):
        devices.append("mps")
    return devices


def proof_tasks(devices: list[str], options: VerifyOptions, progress: bool) -> list[tuple[dict, float]]:
    """The worker tasks for `devices`, each with its time limit."""
    tasks = []
    for device in devices:
        tasks.append(({"task": "ops", "id": f"ops:{device}",
                       "args": {"device": device, "seed": options.seed}},
                      max(OPS_TIMEOUT_S, options.timeout)))
        tasks.append(({"task": "train", "id": f"train:{device}",
                       "args": {"device": device, "epochs": options.epochs, "seed": options.seed,
                                "progress": progress}}, options.timeout))
    return tasks


def run_verify(options: VerifyOptions, *, on_event: Optional[Callable[[str], None]] = None,
               env: Optional[Mapping[str, str]] = None, platform: str = sys.platform) -> VerifyResult:
    """Collect the facts and run the proof; never raises for what goes wrong in torch."""
    started = time.monotonic()
    nvidia = gpu_module.query(platform=platform)
    devices = plan_devices(options.device, len(nvidia.gpus), platform=platform)
    tasks = proof_tasks(devices, options, progress=on_event is not None)
    facts = collect(python=options.python, platform=platform, env=env, nvidia=nvidia,
                    extra_tasks=[t for t, _ in tasks], extra_timeouts=[s for _, s in tasks],
                    on_event=on_event)
    torch_ok = bool(facts.torch.importable)
    replies = _all_replies(facts.worker, tasks, options, env, on_event, retry=torch_ok)
    unplanned = missed_gpus(options.device, devices, facts.torch.devices)
    if unplanned and torch_ok:
        # GPUs torch sees but nvidia-smi did not list (ROCm, a container without nvidia-smi):
        # prove them too, in a second worker.
        more = proof_tasks(unplanned, options, progress=on_event is not None)
        replies.update(_all_replies(None, more, options, env, on_event))
        devices = devices + unplanned
    ddp = _run_ddp(options, devices, env) if options.ddp and torch_ok else None
    return VerifyResult(facts, devices, replies, options.device not in ("auto", "all"), ddp,
                        options.ddp, round(time.monotonic() - started, 3))


def missed_gpus(choice: str, planned: list[str], torch_devices: list[dict]) -> list[str]:
    """CUDA devices torch reports that the plan (made from nvidia-smi) left out."""
    if choice not in ("auto", "all", "cuda"):
        return []
    seen = [f"cuda:{d.get('index')}" for d in torch_devices if d.get("index") is not None]
    return [d for d in seen if d not in planned]


def _all_replies(first: Optional[WorkerRun], tasks: list[tuple[dict, float]],
                 options: VerifyOptions, env: Optional[Mapping[str, str]],
                 on_event: Optional[Callable[[str], None]], retry: bool = True) -> dict[str, dict]:
    """A reply for every proof task, from `first` (the worker that already ran them) or, when
    None, from a worker started here. A task that hung or crashed the worker gets a failure
    reply with the worker's text; the tasks after it run again in a fresh worker, unless
    `retry` is off (torch itself did not import: every retry would wait for nothing)."""

    def start(pending: list[tuple[dict, float]]) -> WorkerRun:
        return WorkerSession([t for t, _ in pending], python=options.python,
                             timeouts=[s for _, s in pending],
                             env=dict(os.environ if env is None else env),
                             on_event=on_event).wait()

    replies: dict[str, dict] = {}
    pending = list(tasks)
    run = first if first is not None else start(pending)
    while pending:
        for task, _limit in pending:
            reply = run.reply(task["id"])
            if reply is not None:
                replies[task["id"]] = reply
        missing = [(t, s) for t, s in pending if t["id"] not in replies]
        if not missing:
            break
        failure = run.failure_text() or "the worker gave no answer"
        culprit = run.timed_out_task if run.timed_out else missing[0][0]["id"]
        replies[culprit] = {"ok": False, "error": failure, "timed_out": run.timed_out}
        if run.timed_out:
            replies[culprit].update(slow=run.timed_out_kind == "slow",
                                    after_s=run.timed_out_after_s,
                                    heartbeat=run.last_heartbeat)
        pending = [(t, s) for t, s in missing if t["id"] != culprit]
        if run.start_error or not retry:
            for task, _limit in pending:
                replies[task["id"]] = {"ok": False, "error": failure, "timed_out": False}
            break
        if pending:
            run = start(pending)
    return replies


def _reinstall_fix(findings: list[Finding]) -> Optional[str]:
    """The torch install command the machine findings already computed, for proof failures."""
    for finding in findings:
        if finding.id.startswith("torch.") and finding.fix and finding.status == "fail":
            return finding.fix
    return "cnnsetup torch-command"


def _no_gpu_fix(findings: list[Finding]) -> str:
    """The fix when CUDA was asked for on a machine where neither nvidia-smi nor torch sees an
    NVIDIA GPU: the machine findings' own fix for the driver when they have one, else proving
    the device this machine does have."""
    for finding in findings:
        if finding.id.startswith(("nvidia.", "driver.")) and finding.fix and \
                finding.status in ("fail", "warn"):
            return finding.fix
    return "cnnsetup verify --device cpu"


def _slow_fix(options_timeout: Optional[float]) -> str:
    limit = max(SLOW_FIX_TIMEOUT_S, int(2 * (options_timeout or 0)))
    return f"cnnsetup verify --timeout {limit}"


def _not_run(check_id: str, device: str, reply: dict, explicit: bool, torch_ok: bool,
             fix: Optional[str]) -> Optional[Finding]:
    """A check for a task that did not produce a result: skipped, or failed with its text."""
    if not torch_ok:
        return Finding(check_id, "skip", _("Not run on {device}: torch cannot be imported (see "
                                           "the torch check above).").format(device=device))
    if not reply.get("ok"):
        beat = reply.get("heartbeat") or {}
        after = reply.get("after_s") or 0.0
        if reply.get("timed_out") and reply.get("slow"):
            if "epoch" in beat:
                summary = _("Training on {device} reached epoch {epoch} of {epochs} in "
                            "{seconds:.0f} s and was still making progress when its time limit "
                            "ran out: this machine is busy or slow.").format(
                    device=device, epoch=beat["epoch"], epochs=beat.get("epochs", "?"),
                    seconds=after)
            else:
                summary = _("The checks on {device} were still making progress (at {where}) when "
                            "their time limit of {seconds:.0f} s ran out: this machine is busy or "
                            "slow.").format(device=device, where=beat.get("op", "?"), seconds=after)
            return Finding(check_id, "fail", summary, _slow_fix(after),
                           _last_lines(reply.get("error")))
        if reply.get("timed_out"):
            summary = _("The run on {device} stopped making progress and was stopped after "
                        "{seconds:.0f} s: it hung.").format(device=device, seconds=after)
        else:
            summary = _("Failed on {device} with an error.").format(device=device)
        return Finding(check_id, "fail", summary, fix, _last_lines(reply.get("error")))
    result = reply.get("result") or {}
    if result.get("skipped"):
        status = "fail" if explicit else "skip"
        return Finding(check_id, status, _("Not run on {device}: {reason}").format(
            device=device, reason=_skip_reason(result)), fix if explicit else None)
    return None


def _skip_reason(result: dict) -> str:
    """Why the worker could not use a device, in the user's language."""
    code, device, count = result.get("reason_code"), result.get("device"), result.get("count", 0)
    if code == "no_cuda":
        return _("torch sees no CUDA device.")
    if code == "cuda_index":
        return _("torch sees {count} CUDA device(s), not {device}.").format(count=count,
                                                                           device=device)
    if code == "no_mps":
        return _("MPS is not available.")
    if code == "unknown_device":
        return _("unknown device {device}.").format(device=device)
    return str(result.get("reason") or "")


@dataclass
class MeasuredFinding(Finding):
    """A proof check with its figures, which the report carries beside the summary:
    worst_error (the worst relative error, None when a result was missing or not finite),
    tolerance, and worst_part (which result that was)."""

    figures: Optional[dict] = None

    def to_json(self) -> dict:
        data = super().to_json()
        data.update(self.figures or {})
        return data


# The operations of cnnsetup.machine.proof, as named in the checks (PyTorch's own names).
OP_NAMES = {
    "conv2d": "Conv2d", "relu": "ReLU", "max_pool2d": "MaxPool2d", "avg_pool2d": "AvgPool2d",
    "linear": "Linear", "cross_entropy": "cross_entropy", "sgd": "torch.optim.SGD",
    "adam": "torch.optim.Adam", "save_load": "torch.save/torch.load",
}


def _part_words(part: Optional[str]) -> str:
    """A proof part ("weight gradient (F.conv2d, stride 2)") in the user's language; the API
    names in brackets stay as they are."""
    if not part:
        return "?"
    kind, _sep, where = part.partition(" (")
    where = f" ({where}" if where else ""
    kinds = {
        "forward": _("forward"), "loss": _("loss"), "input gradient": _("input gradient"),
        "weight gradient": _("weight gradient"), "bias gradient": _("bias gradient"),
        "logits gradient": _("logits gradient"),
    }
    if kind.startswith("parameters after step "):
        return _("parameters after step {step}").format(step=kind.rsplit(" ", 1)[-1]) + where
    return kinds.get(kind, kind) + where


def _ops_checks(device: str, reply: dict, explicit: bool, torch_ok: bool,
                fix: Optional[str]) -> list[Finding]:
    """One check per operation of the proof, with its worst relative error and tolerance."""
    early = _not_run(f"verify.ops.{device}", device, reply, explicit, torch_ok, fix)
    if early:
        return [early]
    return [_op_finding(device, op, fix) for op in reply["result"].get("checks", [])]


def _op_finding(device: str, op: dict, fix: Optional[str]) -> Finding:
    check_id = f"verify.{op['op']}.{device}"
    name = OP_NAMES.get(op["op"], op["op"])
    if op.get("error"):
        return Finding(check_id, "fail", _("{op} on {device} failed with an error.").format(
            op=name, device=device), fix, _last_lines(op["error"]))
    worst = op.get("worst") or {}
    figures = {"worst_error": worst.get("error"), "tolerance": worst.get("tolerance"),
               "worst_part": worst.get("part")}
    if "cpu_error" in worst:
        figures.update(cpu_error=worst.get("cpu_error"), cpu_tolerance=worst.get("cpu_tolerance"))
    values = {"op": name, "device": device, "part": _part_words(worst.get("part")),
              "error": worst.get("error") or 0.0, "tolerance": worst.get("tolerance") or 0.0}
    if op.get("ok"):
        if op["op"] == "save_load":
            summary = _("{op} on {device}: every tensor comes back bit for bit (weights_only=True, "
                        "then load_state_dict).")
        elif op["op"] in ("sgd", "adam"):
            summary = _("{op} on {device} follows its update rule step by step: worst relative "
                        "error {error:.1e}, tolerance {tolerance:.1e}.")
        else:
            summary = _("{op} on {device} agrees with its definition, forward and backward: worst "
                        "relative error {error:.1e}, tolerance {tolerance:.1e}.")
        return MeasuredFinding(check_id, "pass", summary.format(**values), figures=figures)
    problem = worst.get("problem")
    if problem == "missing":
        summary = _("{op} on {device}: no {part} came back (None) where the definition has "
                    "values: autograd or the optimizer did nothing.")
    elif problem == "shape":
        summary = _("{op} on {device}: the {part} has the wrong shape.")
    elif problem == "not_finite":
        summary = _("{op} on {device}: the {part} is not finite (NaN or infinity).")
    elif problem == "cpu":
        values.update(error=worst.get("cpu_error") or 0.0,
                      tolerance=worst.get("cpu_tolerance") or 0.0)
        summary = _("{op} on {device}: the {part} differs from the CPU's float32 result by "
                    "{error:.1e} (tolerance {tolerance:.1e}).")
    else:
        summary = _("{op} float32 {part} on {device} differs from the definition by {error:.1e} "
                    "(tolerance {tolerance:.1e}): torch computes it wrong, a broken or "
                    "mismatched build.")
    return MeasuredFinding(check_id, "fail", summary.format(**values), fix, figures=figures)


def _train_checks(device: str, reply: dict, explicit: bool, torch_ok: bool,
                  fix: Optional[str]) -> list[Finding]:
    check_id = f"verify.train.{device}"
    early = _not_run(check_id, device, reply, explicit, torch_ok, fix)
    if early:
        return [early]
    result = reply["result"]
    summary = _("Trained the reference CNN on {device}: {accuracy:.1%} validation accuracy "
                "(target {target:.0%}) in {seconds:.2f} s, {rate:,.0f} samples/s.").format(
        device=device, accuracy=result["val_accuracy"], target=result["target"],
        seconds=result["seconds"], rate=result["samples_per_s"])
    checks = [Finding(check_id, "pass" if result["ok"] else "fail", summary,
                      None if result["ok"] else fix)]
    checkpoint = result["checkpoint"]
    checks.append(Finding(
        f"verify.checkpoint.{device}", "pass" if checkpoint["ok"] else "fail",
        _("Checkpoint saved and loaded with weights_only=True on {device}: identical "
          "predictions.").format(device=device) if checkpoint["ok"] else
        _("Checkpoint loaded with weights_only=True on {device} gives different predictions "
          "(largest difference {diff:.1e}).").format(device=device, diff=checkpoint["max_abs_diff"]),
        None if checkpoint["ok"] else fix))
    agreement = result.get("cpu_agreement")
    if agreement is not None:
        checks.append(Finding(
            f"verify.gpu_cpu.{device}", "pass" if agreement["ok"] else "fail",
            _("Same seed, same initial weights: outputs on {device} agree with the CPU (largest "
              "difference {diff:.1e}, allowed {tolerance:.0e}).").format(
                device=device, diff=agreement["max_abs_diff"], tolerance=agreement["tolerance"]),
            None if agreement["ok"] else fix))
    return checks


def _training_run(device: str, reply: dict, facts: Facts) -> Optional[dict]:
    """The report's `training` entry for one device; None when it did not run (skipped)."""
    result = reply.get("result") if reply.get("ok") else None
    if result is None:
        if not facts.torch.importable:
            return None
        return {"device": device, "device_name": None, "ok": False, "val_accuracy": None,
                "epochs": None, "seconds": None, "samples_per_s": None,
                "error": _last_lines(reply.get("error")) or "no answer",
                "first_epoch_loss": None, "last_epoch_loss": None, "optimizer": None,
                "threads": None}
    if result.get("skipped"):
        return None
    name = facts.system.cpu_model if device == "cpu" and facts.system.cpu_model else \
        result["device_name"]
    error = None if result["ok"] else \
        f"validation accuracy {result['val_accuracy']:.4f} < {result['target']}"
    losses = result.get("train_loss") or [None]
    return {"device": device, "device_name": name, "ok": bool(result["ok"]),
            "val_accuracy": result["val_accuracy"], "epochs": result["epochs"],
            "seconds": result["seconds"], "samples_per_s": result["samples_per_s"], "error": error,
            "first_epoch_loss": losses[0], "last_epoch_loss": losses[-1],
            "optimizer": result.get("optimizer"), "threads": result.get("threads")}


def _run_ddp(options: VerifyOptions, devices: list[str], env: Optional[Mapping[str, str]]):
    """DistributedDataParallel over `options.ddp` processes: nccl across GPUs, else gloo on CPU."""
    from cnnsetup.machine.ddp import run_ddp

    device = "cuda" if any(d.startswith("cuda") for d in devices) and options.device != "cpu" else "cpu"
    return run_ddp(options.ddp, device=device, epochs=options.epochs, seed=options.seed,
                   timeout_s=max(options.timeout, 60.0) * 2,
                   python=options.python or sys.executable, env=env)


def _ddp_run(result: Any, processes: Optional[int]) -> dict:
    label = f"ddp:{result.backend or ('nccl' if result.device == 'cuda' else 'gloo')}:{processes}"
    return {"device": label, "device_name": None, "ok": result.ok,
            "val_accuracy": result.val_accuracy, "epochs": result.epochs,
            "seconds": result.seconds, "samples_per_s": result.samples_per_s,
            "error": result.error}


def _ddp_finding(result: Any, processes: int, devices: list[str]) -> Finding:
    check_id = "verify.ddp"
    if result is None:
        return Finding(check_id, "skip", _("DistributedDataParallel not run: torch cannot be "
                                           "imported."))
    if result.ok:
        summary = _("DistributedDataParallel over {n} processes ({backend}): every replica ends "
                    "with identical weights; {accuracy:.1%} validation accuracy.").format(
            n=processes, backend=result.backend, accuracy=result.val_accuracy or 0)
        return Finding(check_id, "pass", summary)
    reason = _ddp_reason(result.error_kind)
    summary = _("DistributedDataParallel over {n} processes failed: {reason}").format(
        n=processes, reason=reason)
    fix = {"torch_missing": "cnnsetup torch-command", "not_enough_gpus": f"cnnsetup verify --ddp "
           f"{max(1, sum(1 for d in devices if d.startswith('cuda')))}"}.get(result.error_kind or "")
    return Finding(check_id, "fail", summary, fix, _last_lines(result.error))


def _ddp_reason(kind: Optional[str]) -> str:
    """The DDP launcher's failure kind (cnnsetup.machine.ddp), in words."""
    reasons = {
        "not_enough_gpus": _("more processes than GPUs torch sees."),
        "backend_unavailable": _("this torch build lacks the gloo or nccl backend."),
        "diverged": _("the replicas ended with different weights."),
        "below_target": _("the validation accuracy missed the target."),
        "torch_missing": _("torch cannot be imported."),
        "distributed_missing": _("this torch build has no torch.distributed."),
        "timeout": _("not finished within the time limit; every process was stopped."),
        "crashed": _("a training process failed."),
        "launch_failed": _("the launcher could not be started."),
        "no_result": _("the processes exited without a result."),
    }
    return reasons.get(kind or "", _("see the details below."))


def _last_lines(text: Optional[str], count: int = 8) -> Optional[str]:
    if not text:
        return None
    return "\n".join(text.strip().splitlines()[-count:])


def parse_event(line: str) -> Optional[tuple[str, int, int]]:
    """A worker progress event "DEVICE DONE TOTAL" as (device, done, total), or None."""
    parts = line.split()
    if len(parts) != 3:
        return None
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except ValueError:
        return None


def current_mirrors(env: Optional[Mapping[str, str]] = None) -> dict:
    """The mirror conda's files point at (cnnsetup's own merge, no conda call) and pip's."""
    result: dict[str, Any] = {"conda": None, "pip": None}
    try:
        from cnnsetup.mirror.confirm import mirror_for_channels
        from cnnsetup.mirror.merge import compute

        effective = compute(env=env)
        if not effective.error:
            result["conda"] = mirror_for_channels(effective.channel_urls)
    except Exception:  # a report must not fail for want of a mirror name
        pass
    try:
        from cnnsetup.mirror.pip import mirror_of_index_files

        result["pip"] = mirror_of_index_files(env=env)
    except Exception:
        pass
    return result
