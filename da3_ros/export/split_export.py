"""Split export (``da3-export onnx --split``): a per-view encoder graph and a window graph, one artefact.

In a sliding window the N - 1 keyframes would go through the per-view layers again at every frame although
their images have not changed. A split export cuts the any-view network where views start to interact
(``alt_start``: normalisation, patch embedding, positional embedding and every block before it are per view):

- ``FILE.encoder.onnx``: ``images`` uint8 ``(1, 1, H, W, 3)`` (one view) -> ``view_tokens`` float32
  ``(1, 1, T, C)`` (T = 1 + H/14 * W/14) and ``selection_token`` ``(1, 1, C)`` (the special token the
  reference-view selection reads, one block before ``alt_start``);
- ``FILE.onnx``: the window graph: ``view_tokens`` ``(1, N, T, C)`` (+ ``selection_token`` ``(1, N, C)`` when the
  reference view is selected in-graph: ``saddle_*`` at N >= 3; + ``pose_encoding`` for pose-conditioned graphs)
  -> the monolithic graph's outputs. The reference-view selection (da3_ros.model.reference_view) runs here,
  on the views' selection tokens, so a window of cached tokens picks the monolithic graph's reference.
- with ``--with-descriptor`` the encoder also outputs the view's ``descriptor`` ``(1, 1, C)`` (it is pooled from
  the tokens of block ``alt_start - 1``, before any cross-view attention, so it is a per-view output); the
  artefact's ``descriptor`` ``(1, N, C)`` is the N views' encoder descriptors (the backends stack them, cached
  with the tokens), and the sidecar lists it last in ``outputs`` although the window graph does not have it
  (``SplitSpec.per_view_outputs``);
- ``FILE.json``: one sidecar; its ``split`` lists both graphs, their I/O and SHA-256 and the token shape
  (da3_ros.artifact.sidecar.SplitSpec, checked by ``validate_split``).

The backends run the encoder once per new view and cache its tokens (da3_ros.backends.view_token_cache).
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path

from da3_ros.artifact.capabilities import ModelCapabilities
from da3_ros.artifact.sidecar import (EXPORTER_VERSION, SPLIT_OF_KEY, SPLIT_ROLE_KEY, GraphSpec, Sidecar, SplitSpec,
                                      TensorSpec, checkpoint_sha256, file_sha256, split_graph_path, write_sidecar)
from da3_ros.artifact.tensors import (DESCRIPTOR_OUTPUT, ENCODER_GRAPH, IMAGES_INPUT, POSE_ENCODING_DIM,
                                      POSE_ENCODING_INPUT, SELECTION_TOKEN, VIEW_TOKENS)
from da3_ros.export.export_wrapper import (example_inputs, make_encoder_wrapper, make_window_wrapper,
                                           needs_selection_tokens)


def check_splittable(model) -> None:
    """Raise ValueError unless ``model`` is a single any-view network (the split needs cross-view blocks)."""
    cfg = getattr(model, "config", None)
    if not hasattr(model, "encode_views") or cfg is None or not getattr(cfg, "multi_view", False):
        raise ValueError(f"--split needs a single any-view DA3 network (da3-small/base/large/giant); "
                         f"{getattr(model, 'variant', type(model).__name__)} has no per-view / cross-view split")
    if min(cfg.out_layers) < cfg.alt_start:
        raise ValueError(f"{cfg.name}: output layer {min(cfg.out_layers)} lies before alt_start {cfg.alt_start}")


def _window_example(model, views: int, height: int, width: int, *, ref_view, pose_conditioned: bool):
    """(window graph example inputs, their TensorSpecs, token shape [T, C]) from the encoder on example images."""
    import torch

    from da3_ros.model.normalization import normalize_uint8_images

    example = example_inputs(views, height, width, pose_conditioned=pose_conditioned)
    with torch.inference_mode():
        tokens, selection = model.encode_views(normalize_uint8_images(example[0]))
    t, c = int(tokens.shape[2]), int(tokens.shape[3])
    inputs = [tokens.clone()]
    specs = [TensorSpec(VIEW_TOKENS, "float32", [1, views, t, c])]
    if needs_selection_tokens(ref_view, views, pose_conditioned):
        inputs.append(selection.clone())
        specs.append(TensorSpec(SELECTION_TOKEN, "float32", [1, views, c]))
    if pose_conditioned:
        inputs.append(example[1])
        specs.append(TensorSpec(POSE_ENCODING_INPUT, "float32", [1, views, POSE_ENCODING_DIM]))
    return tuple(inputs), specs, [t, c]


def export_split(model, output: Path, *, views: int, height: int, width: int, variant: str, ref_view,
                 pose_conditioned: bool, with_rays: bool, opset: int, precision: str, checkpoint: str,
                 checkpoint_digest: str, large: bool, say, t0: float, with_descriptor: bool = False) -> Sidecar:
    """Write ``output`` (window graph), ``output.encoder.onnx`` and the one sidecar; return the sidecar.

    ``model`` is prepared for ``height x width`` in fp32 eval mode (da3_ros.export.onnx_export does that)."""
    import onnx
    import torch

    from da3_ros.export.onnx_export import peak_rss_mb, save_graph, trace_graph

    check_splittable(model)
    capabilities = ModelCapabilities.from_config(model.config)
    window_inputs, window_input_specs, tokens = _window_example(model, views, height, width, ref_view=ref_view,
                                                                pose_conditioned=pose_conditioned)
    t, c = tokens
    window = make_window_wrapper(model, height=height, width=width, ref_view=ref_view,
                                 pose_conditioned=pose_conditioned, with_rays=with_rays)
    say(f"probing outputs of {variant} for N={views}, {height}x{width} (split at block {model.config.alt_start})")
    with torch.inference_mode():
        out = window.outputs_dict(*window_inputs)
    window.output_names = list(out)
    output_specs = [TensorSpec(k, "float32", list(v.shape)) for k, v in out.items()]
    encoder_path = split_graph_path(output, ENCODER_GRAPH)
    encoder_specs = ([TensorSpec(IMAGES_INPUT, "uint8", [1, 1, height, width, 3])],
                     [TensorSpec(VIEW_TOKENS, "float32", [1, 1, t, c]),
                      TensorSpec(SELECTION_TOKEN, "float32", [1, 1, c])])
    artefact_outputs = list(output_specs)
    if with_descriptor:
        encoder_specs[1].append(TensorSpec(DESCRIPTOR_OUTPUT, "float32", [1, 1, c]))
        artefact_outputs.append(TensorSpec(DESCRIPTOR_OUTPUT, "float32", [1, views, c]))
    say(f"tracing the per-view encoder -> {encoder_path.name}")
    encoder_proto, encoder_info = trace_graph(
        make_encoder_wrapper(model, with_descriptor=with_descriptor),
        example_inputs(1, height, width, pose_conditioned=False), encoder_path,
        *encoder_specs, opset=opset, precision=precision, large=large, say=say)
    save_graph(encoder_proto, encoder_path, {SPLIT_ROLE_KEY: json.dumps(ENCODER_GRAPH),
                                             SPLIT_OF_KEY: output.name}, large)
    del encoder_proto
    say(f"tracing the window graph -> {output.name}")
    window_proto, window_info = trace_graph(window, window_inputs, output, window_input_specs, output_specs,
                                            opset=opset, precision=precision, large=large, say=say)
    input_specs = [TensorSpec(IMAGES_INPUT, "uint8", [1, views, height, width, 3])]
    if pose_conditioned:
        input_specs.append(TensorSpec(POSE_ENCODING_INPUT, "float32", [1, views, POSE_ENCODING_DIM]))
    split = SplitSpec(encoder=GraphSpec(encoder_path.name, *encoder_specs, sha256=file_sha256(encoder_path)),
                      window=GraphSpec(output.name, window_input_specs, output_specs), tokens=[t, c])
    sidecar = Sidecar(
        variant=variant, views=views, height=height, width=width, ref_view=str(ref_view),
        inputs=input_specs, outputs=artefact_outputs, precision=precision,
        checkpoint_sha256=checkpoint_digest or (checkpoint_sha256(checkpoint) if checkpoint else ""),
        exporter_version=EXPORTER_VERSION, artifact="onnx", pose_conditioned=pose_conditioned,
        with_rays=with_rays, with_descriptor=with_descriptor, opset=opset, depth_unit=capabilities.depth_unit,
        capabilities=capabilities.to_dict(),
        checkpoint=str(checkpoint), created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        split=split,
        extra={"torch_version": torch.__version__, "onnx_version": onnx.__version__,
               "parameters": int(sum(p.numel() for p in model.parameters())), **window_info,
               **{f"encoder_{k}": v for k, v in encoder_info.items()}, "split_at_block": model.config.alt_start},
    )
    say(f"writing {output}" + (" (+ external data)" if large else ""))
    if save_graph(window_proto, output, sidecar.to_metadata_props(), large):
        sidecar.extra["external_data"] = output.name + ".data"
    del window_proto
    split.window.sha256 = file_sha256(output)
    sidecar.extra["export_s"] = round(time.perf_counter() - t0, 2)
    sidecar.extra["export_peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_sidecar(sidecar, output)
    say(f"done: {output}, {encoder_path.name} and {output.with_suffix('.json').name}")
    return sidecar
