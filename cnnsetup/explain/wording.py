"""Translated, actionable messages for shapes that cannot work and network text that cannot be
read. `reference_net` raises ShapeError / SpecError / LayerError with a `reason` and the numbers;
this module words them. Each error carries a stable `code` for --json: explain.<reason>, or
usage.explain.<reason> for a usage error.

A value or combination that can never work is a usage error (exit 2); an output size that is not
a whole number is a failure (exit 1) that --floor (or ceil mode) lets through.
"""

from __future__ import annotations

from fractions import Fraction

from cnnsetup.errors import CnnsetupError, UsageError
from cnnsetup.i18n import N_, _, ngettext
from cnnsetup.render import width
from reference_net import shapes
from reference_net.netspec import LayerError, SpecError
from reference_net.shapes import ShapeError

CONV_SIZE = "(W - F + 2P) / S + 1"
POOL_SIZE = "(W - F) / S + 1"


def number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def coded(error: CnnsetupError, code: str) -> CnnsetupError:
    """`error` with its stable code for a JSON error object; a usage error's code starts with
    `usage.` as every usage error's does (see cnnsetup.errors)."""
    error.code = f"usage.{code}" if isinstance(error, UsageError) else code
    return error


def shape_error(error: ShapeError, *, pool: bool = False, floor_option: str = "--floor",
                ceil_option: str = "--ceil") -> CnnsetupError:
    """A ShapeError as a translated error; `pool` words it for a pooling window."""
    v = error.values
    reason = error.reason
    code = f"explain.{reason}"
    if reason == "not_integer":
        w, f, s, p = v["w"], v["f"], v["s"], v["p"]
        filled = f"({w} - {f} + 2*{p}) / {s} + 1"
        exact = shapes.exact_output_size(w, f, s, p)
        if pool:
            message = _("The output size {formula} = {filled} = {value} is not a whole number: a "
                        "pooling window of {kernel} moving {stride} at a time does not fit the "
                        "input evenly.")
        else:
            message = _("The output size {formula} = {filled} = {value} is not a whole number: a "
                        "kernel of {kernel} moving {stride} at a time does not fit the input "
                        "evenly.")
        if pool and v["ceil"] != v["floor"]:
            hint = _("Choose a stride and padding for which S divides W - F + 2P (here {span}), "
                     "add {option} to drop the remainder as PyTorch does (output {floor}), or "
                     "{ceil_option} to pool the partial window too (output {ceil}).")
        else:  # rounding up would add no window: only flooring is offered
            hint = _("Choose a stride and padding for which S divides W - F + 2P (here {span}), "
                     "or add {option} to drop the remainder as PyTorch does (output {floor}).")
        return coded(CnnsetupError(
            message.format(formula=CONV_SIZE, filled=filled, value=number(exact), kernel=f,
                           stride=s),
            hint=hint.format(span=w - f + 2 * p, option=floor_option, floor=v["floor"],
                             ceil_option=ceil_option, ceil=v["ceil"])), code)
    return coded(UsageError(_impossible(reason, v, pool)), code)


def _impossible(reason: str, v: dict, pool: bool) -> str:
    if reason == "zero_stride":
        return _("The stride must be at least 1 (got {stride}): a window that does not move "
                 "never covers the input.").format(stride=v["s"])
    if reason == "kernel_too_large":
        if pool:
            return _("The pooling window ({window}) is larger than the input with its padding "
                     "({size} + 2 x {pad} = {padded}): it fits nowhere. Use a smaller window."
                     ).format(window=v["f"], size=v["w"], pad=v["p"], padded=v["padded"])
        return _("The kernel ({kernel}) is larger than the padded input ({size} + 2 x {pad} = "
                 "{padded}): it fits nowhere. Use a smaller kernel, a smaller dilation or more "
                 "padding.").format(kernel=v["f"], size=v["w"], pad=v["p"], padded=v["padded"])
    if reason == "pool_padding_too_large":
        return _("Pooling pads by at most half its window ({window} // 2 = {most}), as PyTorch "
                 "requires; got {pad}.").format(window=v["f"], most=v["f"] // 2, pad=v["p"])
    if reason == "negative_padding":
        return _("The padding cannot be negative (got {pad}).").format(pad=v["p"])
    if reason == "bad_kernel":
        return _("The kernel size must be at least 1 (got {kernel}).").format(kernel=v["f"])
    if reason == "bad_dilation":
        return _("The dilation must be at least 1 (got {dilation}).").format(dilation=v["d"])
    if reason == "bad_filters":
        return _("A CONV layer needs at least one filter (got {filters}).").format(filters=v["k"])
    if reason == "reflect_too_wide":
        return _("Reflect padding of {pad} needs an input larger than {pad} in each direction "
                 "(got {size}).").format(pad=v["p"], size=v["w"])
    if reason == "spp_level_too_large":
        return _("The pyramid level {level} x {level} is finer than the {height} x {width} map "
                 "it pools: use levels of at most {most}.").format(
            level=v["n"], height=v["h"], width=v["w"], most=min(v["h"], v["w"]))
    if reason == "flat_input":
        return _("This layer needs a feature map, but its input is already a flat vector of "
                 "{count} numbers (after a flatten, an FC layer or SPP): put it before them."
                 ).format(count=v["n"])
    return _("Every input size must be at least 1.")


def layer_error(error: LayerError) -> CnnsetupError:
    """A layer of a --net network that cannot work, named by its number and its text."""
    inner = shape_error(error.error, pool=error.layer.pool != "",
                        ceil_option=error.layer.kind + "(..., ceil)")
    inner.message = _("Layer {number} ({layer}): {message}").format(
        number=error.index + 1, layer=error.layer.text, message=inner.message)
    return inner


_EXPECTED = {"name": N_("a layer name"), "number": N_("a number"),
             "end": N_("the end of the network")}


def _expected(codes: tuple[str, ...]) -> str:
    words = [_(_EXPECTED[code]) if code in _EXPECTED else repr(code) for code in codes]
    return _(" or ").join(words)


def spec_error(error: SpecError, text: str) -> CnnsetupError:
    """Network text that cannot be read: the reason, and the text with a caret under the place."""
    v = error.values
    reason = error.reason
    if reason == "empty":
        message = _("The network has no layers.")
    elif reason == "unexpected":
        found = repr(v["found"]) if v["found"] else _("the end")
        message = _("Expected {expected}, found {found}.").format(
            expected=_expected(v["expected"]), found=found)
    elif reason == "unknown_layer":
        if v["suggestion"]:
            message = _("No layer is called {name}. Did you mean {suggestion}?").format(
                name=v["name"], suggestion=v["suggestion"])
        else:
            message = _("No layer is called {name}.").format(name=v["name"])
    elif reason == "unknown_argument":
        message = _("{layer} has no argument {name} (it takes: {allowed}).").format(
            layer=v["layer"], name=v["name"], allowed=v["allowed"] or _("numbers only"))
    elif reason == "missing_argument":
        message = _("{layer} needs {name}.").format(layer=v["layer"], name=v["name"])
    elif reason == "too_many_arguments":
        message = ngettext("{layer} takes {count} number before its options.",
                           "{layer} takes {count} numbers before its options.", v["count"]
                           ).format(layer=v["layer"], count=v["count"])
    elif reason == "no_arguments":
        message = _("{layer} takes no arguments.").format(layer=v["layer"])
    elif reason == "duplicate_argument":
        message = _("{layer}: {name} is given more than once.").format(
            layer=v["layer"], name=v["name"])
    elif reason == "too_small":
        message = _("{layer}: {name} must be at least {minimum} (got {value}).").format(
            layer=v["layer"], name=v["name"], minimum=v["minimum"], value=v["value"])
    else:  # not_a_pair
        message = _("{layer}: {name} is one number, not H x W.").format(
            layer=v["layer"], name=v["name"])
    where = _("Cannot read the network at character {position}: {message}").format(
        position=error.position + 1, message=message)
    # The caret sits under the character: a full-width one takes two columns before it.
    caret = "  " + text + "\n  " + " " * width(text[:error.position]) + "^"
    return coded(UsageError(where + "\n" + caret,
                            hint=_("Layers: {layers}").format(layers=GRAMMAR)),
                 f"explain.spec.{reason}")


GRAMMAR = ("conv(OUT, K[, s=S][, p=P][, d=D]), relu, maxpool|avgpool|sumpool(K[, s=S][, p=P]"
           "[, ceil]), gap, gmp, gsp, adaptive(H[xW][, max]), spp(L1, L2, ...), fc(N)")
