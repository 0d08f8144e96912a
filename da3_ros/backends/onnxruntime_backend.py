"""`OnnxRuntimeBackend`: runs an exported DA3 ONNX graph (see da3_ros.export) with ONNX Runtime.

The graph takes ``images`` uint8 (1, N, H, W, 3) (+ ``pose_encoding`` float32 (1, N, 9) for
pose-conditioned graphs) and does the normalisation itself, so ``infer`` only adds the batch axis.
Providers come from configuration (default ``["CPUExecutionProvider"]``); an unknown provider is
refused at construction with the list of available ones.

With ``fused_attention`` (default) the graph's attention blocks are rewritten in memory into ONNX
Runtime's fused ``MultiHeadAttention`` before the session is built (da3_ros.export.attention_fusion;
outputs within 1e-5 of the unfused graph; DA3-Small N=4 504x504 on 2 CPU threads: 3-5 % faster and
peak memory 1.3 GB instead of 2.9 GB). The file on disk is not changed, so the same export still
feeds TensorRT.

A split export (``da3-export onnx --split``: the sidecar's ``split``) runs as two sessions: the per-view encoder
once per view that is new to the window (with ``view_keys``; every view without them) and the window graph on the
N views' tokens. The outputs are the monolithic graph's (tests: within 1e-5); a ``--with-descriptor`` split
export's ``descriptor`` comes from the encoder (cached with the view's tokens).

An ``int8_dynamic`` graph whose int8 scheme is known to saturate on this CPU (full-range int8
weights from older exports on x86 without VNNI; da3_ros.export.int8_quantization.int8_host_problem)
is refused with the re-export command.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from da3_ros.artifact.errors import BackendUnavailableError, EngineMismatchError
from da3_ros.artifact.sidecar import GraphSpec, Sidecar, read_sidecar, validate_sidecar, validate_split
from da3_ros.artifact.tensors import ENCODER_GRAPH, IMAGES_INPUT, SELECTION_TOKEN, VIEW_TOKENS, WINDOW_GRAPH
from da3_ros.backends.base import InferenceBackend
from da3_ros.backends.prediction import WindowPrediction
from da3_ros.backends.view_token_cache import ViewTokenCache
from da3_ros.export.int8_quantization import int8_host_problem

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


def session_options(num_threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads > 0:
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
    return options


def create_session(onnx_path: str, *, providers: Optional[Sequence[str]] = None, num_threads: int = 0,
                   fused_attention: bool = False):
    """(``onnxruntime.InferenceSession`` with full graph optimisation and the given providers,
    attention FusionReport or None).

    With ``fused_attention`` the graph is loaded, its attention rewritten (FusionReport says how many
    blocks) and the session built from the rewrite; the file itself is never modified. Inline weights
    go through a temporary file (a session built from bytes would keep ~one more copy of the weights
    resident); external data is found next to ``onnx_path``."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailableError(f"onnxruntime not importable ({exc})") from exc
    providers = list(providers or DEFAULT_PROVIDERS)
    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise BackendUnavailableError(
            f"onnxruntime providers {missing} not available here (available: {available})")
    options = session_options(num_threads)
    if not fused_attention:
        return ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers), None
    import onnx

    from da3_ros.export.attention_fusion import fuse_attention

    proto = onnx.load(str(onnx_path), load_external_data=False)
    report = fuse_attention(proto)
    if not report.fused:
        del proto
        return ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers), report
    if any(init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer):
        model_bytes = proto.SerializeToString()  # weights stay in FILE.onnx.data: small
        del proto
        options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                         str(Path(onnx_path).resolve().parent))
        return ort.InferenceSession(model_bytes, sess_options=options, providers=providers), report
    handle, tmp = tempfile.mkstemp(prefix="da3_fused_attention_", suffix=".onnx")
    os.close(handle)
    try:
        onnx.save_model(proto, tmp)
        del proto
        return ort.InferenceSession(tmp, sess_options=options, providers=providers), report
    finally:
        os.unlink(tmp)


class OnnxRuntimeBackend(InferenceBackend):
    name = "onnxruntime"

    def __init__(self, onnx_path: str, *, variant: Optional[str] = None, views: Optional[int] = None,
                 height: Optional[int] = None, width: Optional[int] = None, ref_view: Optional[str] = None,
                 providers: Optional[Sequence[str]] = None, num_threads: int = 0,
                 fused_attention: bool = True) -> None:
        path = Path(onnx_path)
        if not path.is_file():
            raise BackendUnavailableError(f"ONNX model {onnx_path} not found; export it with da3-export onnx")
        sidecar = read_sidecar(path)
        validate_sidecar(sidecar, model_path=path, variant=variant, views=views, height=height, width=width,
                         ref_view=ref_view)
        super().__init__(views=sidecar.views, height=sidecar.height, width=sidecar.width,
                         variant=sidecar.variant, ref_view=sidecar.ref_view,
                         capabilities=sidecar.model_capabilities, pose_conditioned=sidecar.pose_conditioned)
        self.sidecar: Sidecar = sidecar
        self.path = path
        int8_problem = int8_host_problem(sidecar)
        if int8_problem:
            raise EngineMismatchError(f"{path}: {int8_problem}: {sidecar.rebuild_hint()} --precision int8_dynamic")
        t0 = time.perf_counter()
        self.encoder_session = None
        self.token_cache: Optional[ViewTokenCache] = None
        if sidecar.split is not None:
            paths = validate_split(sidecar, path)
            self.encoder_session, _ = create_session(str(paths[ENCODER_GRAPH]), providers=providers,
                                                     num_threads=num_threads, fused_attention=fused_attention)
            self._check_graph_io(self.encoder_session, sidecar.split.encoder, ENCODER_GRAPH)
            self.token_cache = ViewTokenCache()
        self.session, self.attention_fusion = create_session(str(path), providers=providers,
                                                             num_threads=num_threads,
                                                             fused_attention=fused_attention)
        self.load_s = time.perf_counter() - t0
        if sidecar.split is not None:
            self._check_graph_io(self.session, sidecar.split.window, WINDOW_GRAPH)
        else:
            self._check_graph_io(self.session, GraphSpec(path.name, sidecar.inputs, sidecar.outputs), "")
        self._output_names = [o.name for o in self.session.get_outputs()]
        self._window_inputs = [i.name for i in self.session.get_inputs()]

    def _check_graph_io(self, session, spec: GraphSpec, role: str) -> None:
        graph_inputs = [i.name for i in session.get_inputs()]
        graph_outputs = [o.name for o in session.get_outputs()]
        shapes = [list(t.shape) for t in session.get_inputs() + session.get_outputs()]
        if (graph_inputs != spec.input_names or graph_outputs != spec.output_names
                or shapes != [t.shape for t in spec.inputs + spec.outputs]):
            what = f"{role} graph {spec.file}" if role else str(self.path)
            raise EngineMismatchError(
                f"{what}: graph I/O {graph_inputs} -> {graph_outputs} {shapes} differs from its sidecar "
                f"{spec.input_names} -> {spec.output_names}; re-export: {self.sidecar.rebuild_hint()}")

    @property
    def split(self) -> bool:
        """True for a split export (per-view encoder + window graph)."""
        return self.encoder_session is not None

    def _infer(self, images: np.ndarray, pose_encoding: Optional[np.ndarray]) -> WindowPrediction:
        if self.split:
            return self._infer_views(images, pose_encoding, None)
        feeds = {"images": images[None]}
        if pose_encoding is not None:
            feeds["pose_encoding"] = pose_encoding[None]
        t0 = time.perf_counter()
        values = self.session.run(self._output_names, feeds)
        infer_s = time.perf_counter() - t0
        return WindowPrediction.from_batched(dict(zip(self._output_names, values)), variant=self.variant,
                                             ref_view=self.ref_view, timings={"infer_s": infer_s})

    def _encode_view(self, images: np.ndarray, v: int):
        """(tokens, selection token, *the per-view outputs (``descriptor``)) of view ``v``, batch axes dropped."""
        names = [VIEW_TOKENS, SELECTION_TOKEN] + self.sidecar.split.per_view_outputs
        values = self.encoder_session.run(names, {IMAGES_INPUT: images[v][None, None]})
        return tuple(value[0, 0] for value in values)

    def _infer_views(self, images: np.ndarray, pose_encoding: Optional[np.ndarray], view_keys) -> WindowPrediction:
        if not self.split:
            return self._infer(images, pose_encoding)
        t0 = time.perf_counter()
        if view_keys is None:
            values = [self._encode_view(images, v) for v in range(len(images))]
            encoded = len(values)
        else:
            values, encoded = self.token_cache.tokens_for(view_keys, images, lambda v: self._encode_view(images, v))
        t1 = time.perf_counter()
        feeds = {VIEW_TOKENS: np.stack([value[0] for value in values])[None],
                 SELECTION_TOKEN: np.stack([value[1] for value in values])[None], "pose_encoding": None}
        if pose_encoding is not None:
            feeds["pose_encoding"] = pose_encoding[None]
        outputs = dict(zip(self._output_names,
                           self.session.run(self._output_names, {k: feeds[k] for k in self._window_inputs})))
        for j, name in enumerate(self.sidecar.split.per_view_outputs):
            outputs[name] = np.stack([value[2 + j] for value in values])[None]
        t2 = time.perf_counter()
        return WindowPrediction.from_batched(
            outputs, variant=self.variant, ref_view=self.ref_view,
            timings={"infer_s": t2 - t0, "encode_s": t1 - t0, "window_s": t2 - t1, "encoded_views": float(encoded)})

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        d.update(model_file=str(self.path), providers=list(self.session.get_providers()),
                 precision=self.sidecar.precision, checkpoint_sha256=self.sidecar.checkpoint_sha256,
                 exporter_version=self.sidecar.exporter_version, load_s=round(self.load_s, 3),
                 fused_attention=(self.attention_fusion.describe() if self.attention_fusion else "off"),
                 split=self.split)
        if self.token_cache is not None:
            d.update(cached_views=len(self.token_cache), encoded_views_total=self.token_cache.encoded_total,
                     reused_views_total=self.token_cache.reused_total)
        return d

    def close(self) -> None:
        self.session = None
        self.encoder_session = None
        if self.token_cache is not None:
            self.token_cache.clear()
        super().close()
