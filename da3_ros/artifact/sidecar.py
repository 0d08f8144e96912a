"""Sidecar metadata of exported models (``FILE.onnx`` -> ``FILE.json``, ``FILE.engine`` -> ``FILE.json``).

The sidecar is the contract between the exporter and the backends (INTERFACES.md). It holds at least
``variant``, ``views``, ``height``, ``width``, ``ref_view``, ``inputs``/``outputs`` (each a list of
``{"name", "dtype", "shape"}``), ``precision``, ``checkpoint_sha256``, ``exporter_version``;
engines add ``tensorrt_version``, ``tensorrt_module``, ``gpu_name``, ``compute_capability``.
``capabilities`` records what the model predicts (:class:`~da3_ros.artifact.capabilities.ModelCapabilities`:
poses, metric depth, sky, confidence); a sidecar written before that field existed gets it from its output
names and ``depth_unit`` when read.
The same key/value pairs are stored in the ONNX ``metadata_props`` (values JSON-encoded), so an ONNX
file without its sidecar can still be checked (:func:`sidecar_from_onnx`).

Split exports (``da3-export onnx --split``) are one artefact of two graphs: ``FILE.onnx`` (or ``FILE.engine``)
is the *window* graph and ``FILE.encoder.onnx`` (``FILE.encoder.engine``) the per-view *encoder*; the sidecar's
``split`` (:class:`SplitSpec`) lists both files, their I/O (names, dtypes, shapes), their SHA-256 and the token
shape ``[T, C]`` they exchange; :func:`validate_split` refuses any mismatch. Sidecars without ``split``
describe one monolithic graph, as before.

Note: an ONNX file and an engine with the same stem in one directory share ``FILE.json``; the engine
sidecar is a superset of the ONNX one (same graph fields, ``precision`` = engine precision,
``onnx_precision`` kept), so both remain loadable.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from da3_ros import __version__ as _package_version
from da3_ros.artifact.capabilities import DEPTH_UNIT_WINDOW_SCALE, ModelCapabilities
from da3_ros.artifact.errors import EngineMismatchError
from da3_ros.artifact.tensors import ENCODER_GRAPH, IMAGES_INPUT, OUTPUT_NAMES, VIEW_TOKENS, WINDOW_GRAPH

SCHEMA_VERSION = 1
EXPORTER_VERSION = f"da3_ros-{_package_version}/export-{SCHEMA_VERSION}"


@dataclass
class TensorSpec:
    """One graph input/output: ``shape`` fully static, ``dtype`` a numpy dtype name."""

    name: str
    dtype: str
    shape: List[int]

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TensorSpec":
        return cls(name=str(d["name"]), dtype=str(d["dtype"]), shape=[int(s) for s in d["shape"]])


@dataclass
class GraphSpec:
    """One graph (or engine) of a split artefact: ``file`` relative to the sidecar's folder."""

    file: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    sha256: str = ""

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GraphSpec":
        return cls(file=str(d["file"]), inputs=[TensorSpec.from_dict(t) for t in d["inputs"]],
                   outputs=[TensorSpec.from_dict(t) for t in d["outputs"]], sha256=str(d.get("sha256", "")))

    @property
    def input_names(self) -> List[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> List[str]:
        return [t.name for t in self.outputs]

    def spec(self, name: str) -> Optional[TensorSpec]:
        """The input or output called ``name``, else None."""
        return next((t for t in self.inputs + self.outputs if t.name == name), None)


@dataclass
class SplitSpec:
    """The two graphs of a split export and the per-view token shape ``[T, C]`` they exchange."""

    encoder: GraphSpec
    window: GraphSpec
    tokens: List[int]

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "SplitSpec":
        try:
            return cls(encoder=GraphSpec.from_dict(d[ENCODER_GRAPH]), window=GraphSpec.from_dict(d[WINDOW_GRAPH]),
                       tokens=[int(v) for v in d["tokens"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineMismatchError(f"sidecar 'split' is incomplete ({type(exc).__name__}: {exc}); "
                                      "re-export with da3-export onnx --split") from exc

    def graphs(self) -> Dict[str, GraphSpec]:
        return {ENCODER_GRAPH: self.encoder, WINDOW_GRAPH: self.window}

    @property
    def per_view_outputs(self) -> List[str]:
        """Artefact outputs that the encoder gives per view (``(1, 1, ...)``, stacked to ``(1, N, ...)``) rather
        than the window graph: the ``descriptor`` of ``--with-descriptor`` exports, else none."""
        return [name for name in self.encoder.output_names if name in OUTPUT_NAMES]


@dataclass
class Sidecar:
    """Metadata of one exported artifact (ONNX graph or TensorRT engine)."""

    variant: str
    views: int
    height: int
    width: int
    ref_view: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    precision: str = "fp32"
    checkpoint_sha256: str = ""
    exporter_version: str = EXPORTER_VERSION
    artifact: str = "onnx"  # "onnx" | "engine"
    pose_conditioned: bool = False
    with_rays: bool = False
    #: the graph outputs ``descriptor`` (place recognition); False in sidecars written before it existed
    with_descriptor: bool = False
    opset: int = 0
    depth_unit: str = DEPTH_UNIT_WINDOW_SCALE  # ModelCapabilities.depth_unit ("canonical_metric": metric variants)
    checkpoint: str = ""
    created_utc: str = ""
    # engine-only
    onnx_precision: str = ""
    onnx_sha256: str = ""
    tensorrt_version: str = ""
    tensorrt_module: str = ""
    gpu_name: str = ""
    compute_capability: str = ""
    capabilities: Dict[str, bool] = field(default_factory=dict)  # ModelCapabilities.to_dict()
    split: Optional[SplitSpec] = None  # split exports only: the encoder and window graphs
    extra: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.capabilities:   # old sidecars / exporters that do not record them
            self.capabilities = ModelCapabilities.from_outputs(self.output_names, self.depth_unit).to_dict()

    @property
    def model_capabilities(self) -> ModelCapabilities:
        try:
            return ModelCapabilities.from_dict(self.capabilities)
        except ValueError as exc:
            raise EngineMismatchError(f"sidecar capabilities are incomplete ({exc}); re-export the model") from exc

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schema_version"] = SCHEMA_VERSION
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Sidecar":
        missing = [k for k in ("variant", "views", "height", "width", "ref_view", "inputs", "outputs")
                   if k not in d]
        if missing:
            raise EngineMismatchError(f"sidecar lacks required fields {missing}; re-export with da3-export onnx")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["inputs"] = [TensorSpec.from_dict(t) for t in d["inputs"]]
        kwargs["outputs"] = [TensorSpec.from_dict(t) for t in d["outputs"]]
        kwargs["views"], kwargs["height"], kwargs["width"] = int(d["views"]), int(d["height"]), int(d["width"])
        kwargs["ref_view"] = str(d["ref_view"])
        kwargs["split"] = SplitSpec.from_dict(d["split"]) if d.get("split") else None
        return cls(**kwargs)

    def to_metadata_props(self) -> Dict[str, str]:
        """String key/values for ``onnx.ModelProto.metadata_props`` (values JSON-encoded)."""
        return {f"da3.{k}": json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_metadata_props(cls, props: Dict[str, str]) -> "Sidecar":
        d = {k[len("da3."):]: json.loads(v) for k, v in props.items() if k.startswith("da3.")}
        return cls.from_dict(d)

    # -- convenience -----------------------------------------------------------------------
    @property
    def input_names(self) -> List[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> List[str]:
        return [t.name for t in self.outputs]

    def rebuild_hint(self) -> str:
        """The export command that reproduces this artifact's graph (for error messages)."""
        return export_command(variant=self.variant, views=self.views, height=self.height,
                              width=self.width, ref_view=self.ref_view,
                              pose_conditioned=self.pose_conditioned, with_rays=self.with_rays,
                              with_descriptor=self.with_descriptor, split=self.split is not None)


def export_command(*, variant: Optional[str], views: int, height: int, width: int, ref_view: str,
                   pose_conditioned: bool = False, with_rays: bool = False, with_descriptor: bool = False,
                   split: bool = False) -> str:
    cmd = (f"da3-export onnx --checkpoint <{variant or 'checkpoint'}> --views {views} --height {height} "
           f"--width {width} --ref-view {ref_view}")
    if pose_conditioned:
        cmd += " --pose-conditioned"
    if with_rays:
        cmd += " --with-rays"
    if with_descriptor:
        cmd += " --with-descriptor"
    if split:
        cmd += " --split"
    return cmd + " --output FILE.onnx"


def sidecar_path(model_path: os.PathLike | str) -> Path:
    """``FILE.onnx``/``FILE.engine`` -> ``FILE.json``."""
    return Path(model_path).with_suffix(".json")


def write_sidecar(sidecar: Sidecar, model_path: os.PathLike | str) -> Path:
    path = sidecar_path(model_path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(sidecar.to_dict(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_sidecar(model_path: os.PathLike | str) -> Sidecar:
    """Read the sidecar of ``model_path``; for ONNX files fall back to the graph's metadata_props."""
    path = sidecar_path(model_path)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise EngineMismatchError(f"sidecar {path} is not valid JSON ({exc}); re-export the model") from exc
        return Sidecar.from_dict(data)
    if str(model_path).endswith(".onnx") and Path(model_path).is_file():
        return sidecar_from_onnx(model_path)
    raise EngineMismatchError(
        f"no sidecar {path} next to {model_path}; re-export with da3-export onnx/engine (it writes both)"
    )


def sidecar_from_onnx(onnx_path: os.PathLike | str) -> Sidecar:
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:
        raise EngineMismatchError(f"{onnx_path} is not a readable ONNX file ({type(exc).__name__}: {exc}) and has "
                                  f"no sidecar {sidecar_path(onnx_path)}; re-export with da3-export onnx") from exc
    props = {p.key: p.value for p in model.metadata_props}
    if props.get(SPLIT_ROLE_KEY) == json.dumps(ENCODER_GRAPH):
        raise EngineMismatchError(f"{onnx_path} is the per-view encoder of a split export; load its window graph "
                                  f"{props.get(SPLIT_OF_KEY, '')!s} (the sidecar lists both)")
    if not any(k.startswith("da3.") for k in props):
        raise EngineMismatchError(f"{onnx_path} has no da3 metadata and no sidecar; re-export with da3-export onnx")
    return Sidecar.from_metadata_props(props)


#: metadata_props of a split export's encoder graph: its role and the window graph it belongs to.
SPLIT_ROLE_KEY = "da3_split.role"
SPLIT_OF_KEY = "da3_split.window_file"


def split_graph_path(model_path: os.PathLike | str, role: str) -> Path:
    """Where a split artefact keeps graph ``role``: the window graph is ``model_path`` itself
    (``FILE.onnx``/``FILE.engine``), the encoder ``FILE.encoder.onnx``/``FILE.encoder.engine``."""
    p = Path(model_path)
    return p if role == WINDOW_GRAPH else p.with_name(f"{p.stem}.{role}{p.suffix}")


def validate_split(sidecar: Sidecar, model_path: os.PathLike | str, *, check_sha256: bool = True) -> Dict[str, Path]:
    """Check a split artefact (``sidecar.split``) against its files; return ``{role: path}``.

    Raises :class:`EngineMismatchError` (what differs and the export command) when a graph file is missing, its
    SHA-256 differs from the recorded one (a graph of another export), or the graphs' shapes do not chain: the
    encoder takes one view ``(1, 1, H, W, 3)`` and gives ``view_tokens (1, 1, T, C)``, the window graph takes the N
    views' ``(1, N, T, C)`` and gives the sidecar's outputs.
    """
    split = sidecar.split
    if split is None:
        raise EngineMismatchError(f"{model_path} is not a split export; re-export with "
                                  f"{sidecar.rebuild_hint()} --split")
    folder = Path(model_path).parent
    t, c = (split.tokens + [0, 0])[:2]
    expected = {
        (ENCODER_GRAPH, IMAGES_INPUT): [1, 1, sidecar.height, sidecar.width, 3],
        (ENCODER_GRAPH, VIEW_TOKENS): [1, 1, t, c],
        (WINDOW_GRAPH, VIEW_TOKENS): [1, sidecar.views, t, c],
    }
    problems = []
    for (role, name), shape in expected.items():
        spec = split.graphs()[role].spec(name)
        if spec is None or spec.shape != shape:
            problems.append(f"{role} {name}: {None if spec is None else spec.shape}, expected {shape}")
    per_view = split.per_view_outputs
    for name in per_view:
        encoder_spec = split.encoder.spec(name)
        spec = next((o for o in sidecar.outputs if o.name == name), None)
        if (spec is None or encoder_spec.shape[:2] != [1, 1]
                or spec.shape != [1, sidecar.views] + encoder_spec.shape[2:]):
            problems.append(f"encoder {name}: {encoder_spec.shape}, sidecar: {None if spec is None else spec.shape}, "
                            f"expected [1, 1, ...] and [1, {sidecar.views}, ...]")
    window_outputs = [name for name in sidecar.output_names if name not in per_view]
    if split.window.output_names != window_outputs:
        problems.append(f"window outputs {split.window.output_names} != {window_outputs}")
    if Path(split.window.file).name != Path(model_path).name:
        problems.append(f"the window graph is {split.window.file}, not {Path(model_path).name}")
    paths = {role: folder / graph.file for role, graph in split.graphs().items()}
    for role, path in paths.items():
        if not path.is_file():
            problems.append(f"{role} graph {path} missing")
        elif check_sha256 and split.graphs()[role].sha256 and file_sha256(path) != split.graphs()[role].sha256:
            problems.append(f"{role} graph {path} has another SHA-256 than the sidecar records (from another export?)")
    if problems:
        raise EngineMismatchError(f"split artefact {model_path} is inconsistent ({'; '.join(problems)}); "
                                  f"re-export both graphs: {sidecar.rebuild_hint()}")
    return paths


def file_sha256(path: os.PathLike | str, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def checkpoint_sha256(checkpoint: os.PathLike | str) -> str:
    """SHA-256 of a checkpoint's weights: the file itself, or ``model.safetensors`` (else the first
    ``*.safetensors``/``*.pth``/``*.bin``) of an HF-layout directory. Empty string if nothing local."""
    p = Path(checkpoint)
    if p.is_file():
        return file_sha256(p)
    if p.is_dir():
        for pattern in ("model.safetensors", "*.safetensors", "*.pth", "*.bin"):
            hits = sorted(p.glob(pattern))
            if hits:
                return file_sha256(hits[0])
    return ""


_PARAMETER_HINT = {
    "views": " (parameter window_size; 0 = the model's)",
    "height": " (parameter network_height; 0 = the model's)",
    "width": " (parameter network_width; 0 = the model's)",
    "variant": " (parameter variant; \"\" = the model's)",
    "ref_view": " (parameter ref_view; \"\" = the model's)",
}


def validate_sidecar(
    sidecar: Sidecar,
    *,
    model_path: os.PathLike | str,
    variant: Optional[str] = None,
    views: Optional[int] = None,
    height: Optional[int] = None,
    width: Optional[int] = None,
    ref_view: Optional[str] = None,
    pose_conditioned: Optional[bool] = None,
) -> None:
    """Raise :class:`EngineMismatchError` if the artifact does not fit the node's configuration.

    ``None`` means "accept what the sidecar says" (the node passes None for parameters left at 0 / "").
    The message lists every difference, names the node parameter of each (``views`` is
    ``window_size``, ``height``/``width`` are ``network_height``/``network_width``) and gives the command
    that builds a matching model.
    """
    want = {"variant": variant, "views": views, "height": height, "width": width,
            "ref_view": None if ref_view is None else str(ref_view), "pose_conditioned": pose_conditioned}
    diffs = []
    for key, wanted in want.items():
        if wanted is None:
            continue
        have = getattr(sidecar, key)
        if (int(have) if key in ("views", "height", "width") else have) != wanted:
            diffs.append(f"{key}: model has {have!r}, configuration wants {wanted!r}"
                         f"{_PARAMETER_HINT.get(key, '')}")
    if diffs:
        fixed = dict(variant=variant or sidecar.variant, views=views or sidecar.views,
                     height=height or sidecar.height, width=width or sidecar.width,
                     ref_view=ref_view if ref_view is not None else sidecar.ref_view,
                     pose_conditioned=sidecar.pose_conditioned if pose_conditioned is None else pose_conditioned,
                     with_rays=sidecar.with_rays, with_descriptor=sidecar.with_descriptor,
                     split=sidecar.split is not None)
        what = "engine" if sidecar.artifact == "engine" else "ONNX model"
        hint = f"rebuild it: {export_command(**fixed)}"
        if sidecar.artifact == "engine":
            hint += " then da3-export engine --onnx FILE.onnx --output FILE.engine (or set force_engine_update)"
        raise EngineMismatchError(f"{what} {model_path} does not match the configuration ({'; '.join(diffs)}); {hint}")


def validate_engine_runtime(
    sidecar: Sidecar,
    *,
    engine_path: os.PathLike | str,
    tensorrt_version: str,
    tensorrt_module: str,
    gpu_name: str,
    compute_capability: str,
) -> None:
    """Raise :class:`EngineMismatchError` if an engine was built for another TensorRT/GPU."""
    diffs = []
    if sidecar.artifact != "engine":
        diffs.append(f"sidecar describes a {sidecar.artifact!r}, not a TensorRT engine")
    for key, have_now in (("tensorrt_module", tensorrt_module), ("tensorrt_version", tensorrt_version)):
        built = getattr(sidecar, key)
        if str(built) != str(have_now):
            diffs.append(f"{key}: engine built with {built!r}, running {have_now!r}")
    if sidecar.gpu_name:
        for key, have_now in (("gpu_name", gpu_name), ("compute_capability", compute_capability)):
            built = getattr(sidecar, key)
            if str(built) != str(have_now):
                diffs.append(f"{key}: engine built for {built!r}, running on {have_now!r}")
    else:  # ahead-of-time build (TensorRT-RTX without a GPU): compute_capability lists targets "SM86,SM89"
        targets = [t.strip().upper() for t in sidecar.compute_capability.split(",") if t.strip()]
        running = "SM" + str(compute_capability).replace(".", "")
        if targets and running not in targets:
            diffs.append(f"compute_capability: engine built for {targets}, running on {compute_capability!r} "
                         f"({gpu_name or 'no GPU'})")
    if diffs:
        raise EngineMismatchError(
            f"TensorRT engine {engine_path} was built for another runtime ({'; '.join(diffs)}); rebuild it on "
            f"this machine: da3-export engine --onnx FILE.onnx --precision {sidecar.precision} --output "
            f"{engine_path} (or set force_engine_update: true)"
        )
