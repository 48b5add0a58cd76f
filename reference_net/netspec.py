"""A network written as one line of text, like PyTorch's layers, and its table by arithmetic alone.

No torch here (`cnnsetup explain --net` imports this). The grammar, whitespace ignored:

    network  := layer ("," layer)*
    layer    := NAME ["(" [argument ("," argument)*] ")"]
    argument := value | NAME "=" value | NAME          (the last is a flag such as `ceil`)
    value    := ["-"] INT | INT "x" INT                (HxW: height x width)

The layers, with PyTorch's defaults:

    conv(OUT, K[, s=S][, p=P][, d=D])    nn.Conv2d(C_in, OUT, K, stride=S, padding=P, dilation=D)
    relu                                 nn.ReLU
    maxpool(K[, s=S][, p=P][, ceil])     nn.MaxPool2d (stride defaults to K); avgpool, sumpool alike
    gap | gmp | gsp                      global average / max / sum pooling: 1 x 1 x C
    adaptive(H[xW][, max])               nn.AdaptiveAvgPool2d (or max, or sum)
    spp(L1, L2, ...)                     spatial pyramid (max) pooling: C * sum(L*L) numbers
    fc(N)                                nn.Linear(n_in, N), flattening a map first

`parse` raises SpecError (with the character position) for text that is not a network;
`summarize` raises LayerError (with the layer and a ShapeError) for a network that cannot be
applied to the input.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from reference_net.shapes import (
    COUNTED_KINDS, Pair, ShapeError, activation_bytes, check_pool_padding, conv_macs,
    conv_params, effective_kernel, fc_macs, fc_params, output_size, spp_check,
)

POOLING = {"maxpool": "max", "avgpool": "avg", "sumpool": "sum"}
GLOBAL = {"gap": "avg", "gmp": "max", "gsp": "sum"}
LAYER_NAMES = ("conv", "relu", *POOLING, *GLOBAL, "adaptive", "spp", "fc")

# kind -> (positional names, keyword name -> field, flags, variadic)
_KEYWORDS_CONV = {"s": "stride", "stride": "stride", "p": "padding", "padding": "padding",
                  "d": "dilation", "dilation": "dilation"}
_KEYWORDS_POOL = {"s": "stride", "stride": "stride", "p": "padding", "padding": "padding"}
SIGNATURES: dict[str, tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]] = {
    "conv": (("out", "kernel"), _KEYWORDS_CONV, ()),
    "relu": ((), {}, ()),
    **{name: (("kernel",), _KEYWORDS_POOL, ("ceil",)) for name in POOLING},
    **{name: ((), {}, ()) for name in GLOBAL},
    "adaptive": (("size",), {}, ("max", "avg", "sum")),
    "spp": (("levels",), {}, ()),
    "fc": (("out",), {}, ()),
}
MINIMUM = {"out": 1, "kernel": 1, "stride": 1, "padding": 0, "dilation": 1, "size": 1,
           "levels": 1}
PAIRS_ALLOWED = ("kernel", "size")  # the arguments that may be written HxW
DISPLAY = {"out": "OUT", "kernel": "K", "size": "H", "levels": "L"}  # as the grammar writes them


class SpecError(ValueError):
    """Text that is not a network. `reason` names the rule, `position` the character (0-based)
    where it broke, `values` the words and numbers for a caller's own (translated) message.

    Reasons: empty, unexpected (found, expected), unknown_layer (name, suggestion),
    unknown_argument (layer, name, allowed), missing_argument (layer, name),
    too_many_arguments (layer, count), duplicate_argument (layer, name), no_arguments (layer),
    too_small (layer, name, value, minimum), not_a_pair (layer, name)."""

    def __init__(self, reason: str, position: int, message: str, **values) -> None:
        super().__init__(f"at character {position + 1}: {message}")
        self.reason = reason
        self.position = position
        self.values = values


@dataclass(frozen=True)
class LayerSpec:
    """One layer as written. `kind` is the name written (conv, maxpool, gap...)."""

    kind: str
    text: str
    position: int
    out: int = 0  # conv: filters; fc: outputs
    kernel: Pair = (1, 1)
    stride: Pair | None = None  # None: 1 for conv, the window for pooling
    padding: int = 0
    dilation: int = 1
    ceil_mode: bool = False
    pool: str = ""  # max | avg | sum for every pooling kind
    size: Pair = (1, 1)  # adaptive: the output H x W
    levels: tuple[int, ...] = ()  # spp


# ---- the tokenizer -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # name | int | pair | ( | ) | , | = | end
    value: object
    position: int
    text: str


_TIMES = "xX*\u00d7"
# Full-width punctuation, as a Chinese input method types it, read as its ASCII twin.
_FULL_WIDTH = {"\uff08": "(", "\uff09": ")", "\uff0c": ",", "\uff1d": "="}


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        ch = _FULL_WIDTH.get(text[i], text[i])
        if ch.isspace():
            i += 1
        elif ch in "(),=":
            out.append(_Token(ch, ch, i, text[i]))
            i += 1
        elif ch.isdigit() or (ch == "-" and i + 1 < len(text) and text[i + 1].isdigit()):
            start = i
            i += 1
            while i < len(text) and text[i].isdigit():
                i += 1
            first = int(text[start:i])
            if (ch != "-" and i + 1 < len(text) and text[i] in _TIMES and text[i + 1].isdigit()):
                i += 1
                second_start = i
                while i < len(text) and text[i].isdigit():
                    i += 1
                out.append(_Token("pair", (first, int(text[second_start:i])), start,
                                  text[start:i]))
            else:
                out.append(_Token("int", first, start, text[start:i]))
        elif ch.isalpha() or ch == "_":
            start = i
            while i < len(text) and (text[i].isalnum() or text[i] == "_"):
                i += 1
            out.append(_Token("name", text[start:i].lower(), start, text[start:i]))
        else:
            raise SpecError("unexpected", i, f"unexpected {ch!r}", found=ch,
                            expected=_expected_at(out))
    out.append(_Token("end", None, len(text), ""))
    return out


def _expected_at(before: list[_Token]) -> tuple[str, ...]:
    """What could come next after `before` (for the message about a stray character)."""
    last = before[-1].kind if before else ","
    inside = _depth(before) > 0
    if last == ",":
        return ("number", "name") if inside else ("name",)
    if last == "(":
        return ("number", "name", ")")
    if last == "=":
        return ("number",)
    if last == ")":
        return (",", "end")
    if inside:
        return (",", ")", "=") if last == "name" else (",", ")")
    return (",", "(", "end")


def _depth(tokens: list[_Token]) -> int:
    return sum(1 if t.kind == "(" else -1 if t.kind == ")" else 0 for t in tokens)


# ---- the parser --------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def take(self, *kinds: str) -> _Token:
        token = self.token
        if token.kind not in kinds:
            found = token.text if token.kind != "end" else ""
            expected = tuple(dict.fromkeys("number" if k in ("int", "pair") else k
                                           for k in kinds))
            raise SpecError("unexpected", token.position,
                            f"expected {' or '.join(expected)}, found {found or 'the end'}",
                            found=found, expected=expected)
        self.i += 1
        return token

    def network(self) -> list[LayerSpec]:
        if self.token.kind == "end":
            raise SpecError("empty", 0, "the network has no layers")
        layers = [self.layer()]
        while self.token.kind == ",":
            self.i += 1
            layers.append(self.layer())
        self.take(",", "end")
        return layers

    def layer(self) -> LayerSpec:
        name = self.take("name")
        if name.value not in SIGNATURES:
            close = difflib.get_close_matches(name.value, LAYER_NAMES, n=1)
            raise SpecError("unknown_layer", name.position, f"no layer is called {name.text!r}",
                            name=name.text, suggestion=close[0] if close else "")
        arguments: list[tuple[_Token | None, _Token]] = []  # (keyword name or None, value)
        if self.token.kind == "(":
            self.i += 1
            if self.token.kind != ")":
                arguments.append(self.argument())
                while self.token.kind == ",":
                    self.i += 1
                    arguments.append(self.argument())
            end = self.take(")")
            text = self.text[name.position:end.position + 1]
        else:
            text = name.text
        return _build(name.value, text, name.position, arguments)

    def argument(self) -> tuple[_Token | None, _Token]:
        token = self.take("int", "pair", "name")
        if token.kind == "name":
            if self.token.kind == "=":
                self.i += 1
                return token, self.take("int", "pair")
            return None, token  # a flag
        return None, token


def _build(kind: str, text: str, position: int, arguments: list) -> LayerSpec:
    positional_names, keywords, flags = SIGNATURES[kind]
    fields: dict = {}
    positional: list[_Token] = []
    for keyword, value in arguments:
        if keyword is None and value.kind == "name":
            if value.value not in flags:
                raise _unknown_argument(kind, value, keywords, flags)
            if value.value in fields:
                raise SpecError("duplicate_argument", value.position,
                                f"{value.text} is given twice", layer=kind, name=value.text)
            fields[value.value] = True
        elif keyword is None:
            if kind == "spp" or len(positional) < len(positional_names):
                positional.append(value)
            elif not positional_names:
                raise SpecError("no_arguments", value.position, f"{kind} takes no arguments",
                                layer=kind)
            else:
                raise SpecError("too_many_arguments", value.position,
                                f"{kind} takes {len(positional_names)} numbers",
                                layer=kind, count=len(positional_names))
        else:
            if keyword.value not in keywords:
                raise _unknown_argument(kind, keyword, keywords, flags)
            name = keywords[keyword.value]
            if name in fields:
                raise SpecError("duplicate_argument", keyword.position,
                                f"{keyword.text} is given twice", layer=kind, name=keyword.text)
            fields[name] = _number(kind, name, value, keyword.text)
    if len(positional) < max(len(positional_names), 1 if kind == "spp" else 0):
        missing = positional_names[len(positional)]
        raise SpecError("missing_argument", position + len(text) - 1 if text.endswith(")")
                        else position + len(text), f"{kind} needs {DISPLAY[missing]}",
                        layer=kind, name=DISPLAY[missing])
    spec: dict = {"kind": kind, "text": text, "position": position}
    if kind == "spp":
        spec["levels"] = tuple(_number(kind, "levels", token) for token in positional)
        spec["pool"] = "max"
    else:
        for name, token in zip(positional_names, positional):
            value = _number(kind, name, token)
            spec[name] = (value, value) if name in PAIRS_ALLOWED and isinstance(value, int) \
                else value
    if "stride" in fields:
        spec["stride"] = (fields["stride"], fields["stride"])
    for name in ("padding", "dilation"):
        if name in fields:
            spec[name] = fields[name]
    if kind in POOLING:
        spec["pool"] = POOLING[kind]
        spec["ceil_mode"] = bool(fields.get("ceil"))
    elif kind in GLOBAL:
        spec["pool"] = GLOBAL[kind]
    elif kind == "adaptive":
        chosen = [flag for flag in flags if flag in fields]
        if len(chosen) > 1:
            raise SpecError("duplicate_argument", position, "choose one of max, avg, sum",
                            layer=kind, name=" / ".join(chosen))
        spec["pool"] = chosen[0] if chosen else "avg"
    return LayerSpec(**spec)


def _number(kind: str, name: str, token: _Token, written: str | None = None) -> int | Pair:
    written = written or DISPLAY.get(name, name)
    if token.kind == "pair" and name not in PAIRS_ALLOWED:
        raise SpecError("not_a_pair", token.position, f"{written} is one number",
                        layer=kind, name=written)
    minimum = MINIMUM[name]
    values = token.value if token.kind == "pair" else (token.value,)
    for value in values:
        if value < minimum:
            raise SpecError("too_small", token.position,
                            f"{written} must be at least {minimum}, not {value}",
                            layer=kind, name=written, value=value, minimum=minimum)
    return token.value


def _unknown_argument(kind: str, token: _Token, keywords: dict, flags: tuple) -> SpecError:
    allowed = ", ".join([*(f"{k}=" for k in keywords if len(k) == 1), *flags])
    return SpecError("unknown_argument", token.position, f"{kind} has no argument {token.text}",
                     layer=kind, name=token.text, allowed=allowed)


def parse(text: str) -> list[LayerSpec]:
    """"conv(16,3,p=1),relu,maxpool(2),fc(10)" -> four LayerSpecs; SpecError if it is not one."""
    return _Parser(text).network()


# ---- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class NetLayer:
    """One row of the table: the output of the layer for one image.

    `kind` is conv | relu | pool | flatten | fc (as in LayerInfo); `spec` the text written for it
    ("" for a flatten the table adds before an FC layer). `receptive_field` is (h, w) input
    pixels that one output pixel sees, or None after global, adaptive, SPP or FC layers."""

    name: str
    kind: str
    spec: str
    output_shape: tuple[int, int, int]
    params: int
    macs: int
    receptive_field: Pair | None
    activation_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation_bytes", activation_bytes(self.output_shape))

    @property
    def counts_as_layer(self) -> bool:
        return self.kind in COUNTED_KINDS

    def to_dict(self) -> dict:
        rf = self.receptive_field
        return {
            "name": self.name, "kind": self.kind, "spec": self.spec,
            "output_shape": list(self.output_shape), "params": self.params, "macs": self.macs,
            "receptive_field": None if rf is None else rf[0] if rf[0] == rf[1] else list(rf),
            "activation_bytes": self.activation_bytes, "counts_as_layer": self.counts_as_layer,
        }


class LayerError(ValueError):
    """A layer that cannot be applied where it stands. `index` (0-based), `layer` (LayerSpec),
    `error` (the ShapeError: its reason says which rule broke; flat_input when a layer that needs
    a map follows a flatten, an FC layer or SPP)."""

    def __init__(self, index: int, layer: LayerSpec, error: ShapeError) -> None:
        super().__init__(f"layer {index + 1} ({layer.text}): {error}")
        self.index, self.layer, self.error = index, layer, error


_KIND = {"conv": "conv", "relu": "relu", "fc": "fc"}


def summarize(layers: list[LayerSpec], input_shape: tuple[int, int, int], *,
              mode: str = "strict") -> list[NetLayer]:
    """The table of `layers` applied to one H x W x C image, by arithmetic alone."""
    h, w, c = input_shape
    for n in input_shape:
        if n < 1:
            raise ShapeError("bad_input", f"every input size must be at least 1, not {n}", w=n)
    rows: list[NetLayer] = []
    rf: Pair | None = (1, 1)
    jump = (1, 1)
    flat = False
    counters: dict[str, int] = {}

    def add(kind: str, spec: str, shape: tuple[int, int, int], params: int = 0,
            macs: int = 0) -> None:
        counters[kind] = counters.get(kind, 0) + 1
        name = kind if kind == "flatten" else f"{kind}{counters[kind]}"
        rows.append(NetLayer(name, kind, spec, shape, params, macs, rf))

    for index, layer in enumerate(layers):
        try:
            if flat and layer.kind not in ("relu", "fc"):
                raise ShapeError("flat_input", f"{layer.kind} needs a feature map, but the input "
                                 "is already a flat vector", n=h * w * c)
            if layer.kind == "conv":
                (kh, kw), (sh, sw) = layer.kernel, layer.stride or (1, 1)
                d, p = layer.dilation, layer.padding
                out_h = output_size(h, kh, sh, p, mode=mode, dilation=d)
                out_w = output_size(w, kw, sw, p, mode=mode, dilation=d)
                params = conv_params((kh, kw), c, layer.out)
                macs = conv_macs((out_h, out_w), c, layer.out, (kh, kw))
                if rf is not None:
                    rf = (rf[0] + (effective_kernel(kh, d) - 1) * jump[0],
                          rf[1] + (effective_kernel(kw, d) - 1) * jump[1])
                    jump = (jump[0] * sh, jump[1] * sw)
                h, w, c = out_h, out_w, layer.out
                add("conv", layer.text, (h, w, c), params, macs)
            elif layer.kind == "relu":
                add("relu", layer.text, (h, w, c))
            elif layer.kind in POOLING:
                (kh, kw), p = layer.kernel, layer.padding
                sh, sw = layer.stride or (kh, kw)
                check_pool_padding(min(kh, kw), p)
                out_h = output_size(h, kh, sh, p, mode=mode, ceil_mode=layer.ceil_mode)
                out_w = output_size(w, kw, sw, p, mode=mode, ceil_mode=layer.ceil_mode)
                if rf is not None:
                    rf = (rf[0] + (kh - 1) * jump[0], rf[1] + (kw - 1) * jump[1])
                    jump = (jump[0] * sh, jump[1] * sw)
                h, w = out_h, out_w
                add("pool", layer.text, (h, w, c))
            elif layer.kind in GLOBAL or layer.kind == "adaptive":
                h, w = layer.size if layer.kind == "adaptive" else (1, 1)
                rf = None
                add("pool", layer.text, (h, w, c))
            elif layer.kind == "spp":
                spp_check((h, w), layer.levels)
                h, w, c, flat, rf = 1, 1, c * sum(n * n for n in layer.levels), True, None
                add("pool", layer.text, (h, w, c))
            elif layer.kind == "fc":
                if not flat and h * w > 1:
                    add("flatten", "", (1, 1, h * w * c))
                n_in = h * w * c
                h, w, c, flat, rf = 1, 1, layer.out, True, None
                add("fc", layer.text, (h, w, c), fc_params(n_in, layer.out),
                    fc_macs(n_in, layer.out))
        except ShapeError as error:
            raise LayerError(index, layer, error) from None
    return rows


def total_macs(rows: list[NetLayer]) -> int:
    return sum(row.macs for row in rows)
