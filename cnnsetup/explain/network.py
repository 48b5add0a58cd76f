"""Whole networks layer by layer: the reference network `verify` trains, and a student's own network
written as text (`--net`, grammar in reference_net.netspec), with the columns of CS231n's VGGNet
table: output size, parameters, multiply-accumulates, receptive field and activation memory."""

from __future__ import annotations

from cnnsetup.explain.layer import byte_text, shape_text, summary_json, yes_no
from cnnsetup.i18n import _
from cnnsetup.render import echo, style, table
from reference_net import shapes
from reference_net.netspec import NetLayer, total_macs
from reference_net.shapes import LayerInfo


def reference_json(summary: list[LayerInfo], input_shape: tuple[int, int, int]) -> dict:
    data = summary_json(summary, input_shape, "network")
    data["architecture"] = shapes.architecture(summary)
    return data


def render_reference(summary: list[LayerInfo], input_shape: tuple[int, int, int]) -> None:
    echo(style(_("The reference network: {architecture}").format(
        architecture=shapes.architecture(summary)), bold=True))
    echo(_("Input: {shape} (height x width x channels)").format(shape=shape_text(input_shape)))
    echo()
    rows = [[layer.name, shape_text(layer.output_shape), f"{layer.params:,}",
             yes_no(layer.counts_as_layer)] for layer in summary]
    header = [_("Layer"), _("Output (H x W x C)"), _("Parameters"), _("Counts as a layer")]
    echo(table(rows, header=header, indent=2))
    echo()
    echo(_("Total parameters: {total}").format(total=f"{shapes.total_params(summary):,}"))
    echo(_("Layers: {count} (only CONV and FC layers count; RELU and POOL do not)").format(
        count=shapes.count_layers_in(summary)))


def _architecture(rows: list[NetLayer]) -> str:
    return "-".join(row.kind.upper() for row in rows if row.kind != "flatten")


def net_json(rows: list[NetLayer], input_shape: tuple[int, int, int], text: str,
             mode: str) -> dict:
    """The --net --json object: `layers` (each name, kind, spec, output_shape [H, W, C], params,
    macs, receptive_field (int, [h, w] or null), activation_bytes, counts_as_layer),
    `total_params`, `total_macs`, `total_activation_bytes`, `layer_count`."""
    return {
        "subject": "net",
        "net": text,
        "mode": mode,
        "input_shape": list(input_shape),
        "architecture": _architecture(rows),
        "layers": [row.to_dict() for row in rows],
        "total_params": sum(row.params for row in rows),
        "total_macs": total_macs(rows),
        "total_activation_bytes": sum(row.activation_bytes for row in rows),
        "layer_count": sum(1 for row in rows if row.counts_as_layer),
    }


def render_net(rows: list[NetLayer], input_shape: tuple[int, int, int]) -> None:
    echo(style(_("Your network: {architecture}").format(architecture=_architecture(rows)),
               bold=True))
    echo(_("Input: {shape} (height x width x channels)").format(shape=shape_text(input_shape)))
    echo()
    body = []
    for row in rows:
        rf = row.receptive_field
        rf_text = "-" if rf is None else shape_text(rf)
        body.append([row.spec or row.name, shape_text(row.output_shape), f"{row.params:,}",
                     f"{row.macs:,}", rf_text, byte_text(row.activation_bytes),
                     yes_no(row.counts_as_layer)])
    header = [_("Layer"), _("Output (H x W x C)"), _("Parameters"), _("MACs"),
              _("Receptive field"), _("Memory"), _("Counts as a layer")]
    echo(table(body, header=header, indent=2))
    echo()
    echo(_("Total parameters: {total}").format(total=f"{sum(r.params for r in rows):,}"))
    echo(_("Total multiply-accumulates (one image, forward pass): {total}").format(
        total=f"{total_macs(rows):,}"))
    echo(_("Activation memory (every output above, one float32 image): {size}").format(
        size=byte_text(sum(r.activation_bytes for r in rows))))
    echo(_("Layers: {count} (only CONV and FC layers count; RELU and POOL do not)").format(
        count=sum(1 for r in rows if r.counts_as_layer)))
    echo()
    echo(_("MACs: CONV H_out*W_out*C_out*C_in*Kh*Kw, FC inputs*outputs (bias, RELU and pooling "
           "not counted). Receptive field: input pixels one output pixel sees (none after "
           "global, adaptive, SPP or FC layers)."))

