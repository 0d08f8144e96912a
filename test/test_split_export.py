"""Split export (per-view encoder + window graph, one artefact) and the per-view token cache (issue 21).

Reduced random-weight DA3 graphs, real ONNX Runtime sessions on real exported files: the cached path (each
view encoded once while its key stays in the window) gives the monolithic graph's outputs, the saddle
reference view chosen from cached tokens is the monolithic graph's, mismatched artefacts are refused, and
TensorRT-RTX (when installed) builds two engines from one split artefact.

Tolerance: split vs monolithic is the same arithmetic cut in two graphs; ONNX Runtime fuses each graph
separately, so float32 round-off differs by a few ulp per op (measured <= 4e-7 relative): 1e-5 (the issue's
bound) holds on every CPU. Against PyTorch the project's ORT-vs-torch bound 1e-4 is used.
"""
import json
import shutil

import numpy as np
import pytest
import torch

from da3_ros.artifact.sidecar import read_sidecar, split_graph_path, validate_split
from da3_ros.artifact.tensors import ENCODER_GRAPH, SELECTION_TOKEN, VIEW_TOKENS
from da3_ros.backends import EngineMismatchError
from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from da3_ros.backends.torch_backend import TorchBackend
from da3_ros.export.export_wrapper import example_pose_encoding
from da3_ros.export.onnx_export import export_model_to_onnx
from da3_ros.export.reduced_config import reduced_model
from da3_ros.model.normalization import normalize_uint8_images
from da3_ros.model.reference_view import select_reference_view

H, W = 56, 84
SPLIT_RTOL = 1e-5
TORCH_RTOL = 1e-4

CASES = {
    "saddle4": dict(views=4),
    "pose3": dict(views=3, pose_conditioned=True),
    "ref1_rays3": dict(views=3, ref_view="1", with_rays=True),
}


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return reduced_model("multi_view")


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    out = {}
    for name, case in CASES.items():
        split = export_model_to_onnx(model, root / f"{name}_split.onnx", height=H, width=W, verbose=False,
                                     split=True, **case)
        export_model_to_onnx(model, root / f"{name}.onnx", height=H, width=W, verbose=False, **case)
        out[name] = (root / f"{name}_split.onnx", root / f"{name}.onnx", split)
    return out


def _max_rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


def _frames(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, H, W, 3), dtype=np.uint8)


def _assert_same(got, ref, rtol, what):
    assert sorted(got.arrays()) == sorted(ref.arrays()), what
    for key, value in ref.arrays().items():
        assert np.std(value) > 0, (what, key)  # a parity test on constants proves nothing
        assert _max_rel(got.arrays()[key], value) <= rtol, (what, key, _max_rel(got.arrays()[key], value))


def test_sidecar_lists_both_graphs_and_their_shapes(exported, model):
    path, _, sidecar = exported["saddle4"]
    again = read_sidecar(path)
    assert again.split is not None and again.split == sidecar.split
    t = 1 + (H // 14) * (W // 14)
    c = model.config.embed_dim
    assert again.split.tokens == [t, c]
    assert again.split.encoder.file == "saddle4_split.encoder.onnx"
    assert [(s.name, s.shape) for s in again.split.encoder.outputs] == [(VIEW_TOKENS, [1, 1, t, c]),
                                                                        (SELECTION_TOKEN, [1, 1, c])]
    assert [s.name for s in again.split.window.inputs] == [VIEW_TOKENS, SELECTION_TOKEN]  # saddle: in-graph
    pose_inputs = [s.name for s in read_sidecar(exported["pose3"][0]).split.window.inputs]
    assert pose_inputs == [VIEW_TOKENS, "pose_encoding"]
    assert [s.name for s in read_sidecar(exported["ref1_rays3"][0]).split.window.inputs] == [VIEW_TOKENS]
    assert again.input_names == ["images"] and again.output_names == sidecar.split.window.output_names
    assert set(validate_split(again, path)) == {"encoder", "window"}
    assert "--split" in again.rebuild_hint()


@pytest.mark.parametrize("name", list(CASES))
def test_cached_sliding_window_equals_the_monolithic_graph(exported, name):
    split_path, mono_path, sc = exported[name]
    split = OnnxRuntimeBackend(str(split_path), num_threads=2)
    mono = OnnxRuntimeBackend(str(mono_path), num_threads=2)
    n = sc.views
    frames = _frames(n + 3, seed=1)
    rng = np.random.default_rng(5)
    for f in range(4):
        window = frames[f:f + n]
        pose = example_pose_encoding(n, rng) if sc.pose_conditioned else None
        got = split.infer(window, pose, view_keys=[("snap", i) for i in range(f, f + n)])
        assert got.timings["encoded_views"] == (n if f == 0 else 1)   # only the new view is encoded
        assert split.describe()["cached_views"] == n                     # bounded by the window
        ref = mono.infer(window, pose)
        _assert_same(got, ref, SPLIT_RTOL, (name, f))
        _assert_same(split.infer(window, pose), ref, SPLIT_RTOL, (name, f, "no keys"))
    d = split.describe()
    assert d["split"] and d["encoded_views_total"] == n + 3 and d["reused_views_total"] == 3 * (n - 1)


def test_saddle_reference_from_cached_tokens_is_the_monolithic_choice(exported, model):
    split_path, mono_path, sc = exported["saddle4"]
    n = sc.views
    split = OnnxRuntimeBackend(str(split_path), num_threads=2)
    mono = OnnxRuntimeBackend(str(mono_path), num_threads=2)
    by_ref = {r: TorchBackend(model=model, views=n, height=H, width=W, ref_view=str(r)) for r in range(n)}
    frames = _frames(n + 7, seed=3)
    chosen = []
    for f in range(8):
        window = frames[f:f + n]
        with torch.inference_mode():
            _, selection = model.encode_views(normalize_uint8_images(torch.from_numpy(window)[None]))
            ref = int(select_reference_view(selection, "saddle_balanced")[0])
        chosen.append(ref)
        got = split.infer(window, view_keys=list(range(f, f + n)))
        _assert_same(got, mono.infer(window), SPLIT_RTOL, f)
        _assert_same(got, by_ref[ref].infer(window), TORCH_RTOL, (f, ref))
        other = by_ref[(ref + 1) % n].infer(window)   # another reference: a different world frame
        assert _max_rel(got.extrinsics, other.extrinsics) > 1e-2, f
    assert len(set(chosen)) >= 2, chosen   # the windows exercise more than one reference choice


def test_torch_backend_caches_the_same_way(exported, model):
    _, mono_path, sc = exported["saddle4"]
    mono = OnnxRuntimeBackend(str(mono_path), num_threads=2)
    tb = TorchBackend(model=model, views=sc.views, height=H, width=W, ref_view=sc.ref_view)
    frames = _frames(sc.views + 2, seed=7)
    for f in range(3):
        got = tb.infer(frames[f:f + sc.views], view_keys=list(range(f, f + sc.views)))
        assert got.timings["encoded_views"] == (sc.views if f == 0 else 1)
        _assert_same(got, mono.infer(frames[f:f + sc.views]), TORCH_RTOL, f)


def test_a_key_with_another_image_is_encoded_again(exported):
    split_path, mono_path, sc = exported["saddle4"]
    split = OnnxRuntimeBackend(str(split_path), num_threads=2)
    mono = OnnxRuntimeBackend(str(mono_path), num_threads=2)
    frames = _frames(2 * sc.views, seed=11)
    keys = list(range(sc.views))
    split.infer(frames[:sc.views], view_keys=keys)
    changed = frames[:sc.views].copy()
    changed[2] = frames[sc.views + 2]
    got = split.infer(changed, view_keys=keys)    # same keys, view 2 has a new image
    assert got.timings["encoded_views"] == 1
    _assert_same(got, mono.infer(changed), SPLIT_RTOL, "changed image")
    with pytest.raises(ValueError, match="view_keys must name the 4 views"):
        split.infer(changed, view_keys=keys[:3])
    with pytest.raises(ValueError, match="not hashable"):
        split.infer(changed, view_keys=[[0]] * sc.views)


def test_mismatched_split_artefacts_are_refused(exported, tmp_path):
    split_path, _, sc = exported["saddle4"]
    folder = tmp_path / "a"
    folder.mkdir()
    for f in (split_path, split_path.with_suffix(".json"), split_graph_path(split_path, ENCODER_GRAPH)):
        shutil.copy(f, folder / f.name)
    path = folder / split_path.name
    encoder = split_graph_path(path, ENCODER_GRAPH)
    OnnxRuntimeBackend(str(path), num_threads=1).close()       # the copy itself loads
    # an encoder of another export (other weights, same shapes)
    other = export_model_to_onnx(reduced_model("multi_view", seed=1), tmp_path / "b" / "o.onnx", views=4,
                                 height=H, width=W, verbose=False, split=True)
    assert other.split.tokens == sc.split.tokens
    shutil.copy(tmp_path / "b" / "o.encoder.onnx", encoder)
    with pytest.raises(EngineMismatchError, match="encoder graph .* another SHA-256.*--split"):
        OnnxRuntimeBackend(str(path))
    encoder.unlink()
    with pytest.raises(EngineMismatchError, match="encoder graph .* missing"):
        OnnxRuntimeBackend(str(path))
    shutil.copy(split_graph_path(split_path, ENCODER_GRAPH), encoder)
    with pytest.raises(EngineMismatchError, match="per-view encoder of a split export"):
        read_sidecar(encoder)
    data = json.loads(path.with_suffix(".json").read_text())
    data["split"]["tokens"][0] += 1
    path.with_suffix(".json").write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match=r"encoder view_tokens: \[1, 1, 25, 64\], expected \[1, 1, 26, 64\]"):
        OnnxRuntimeBackend(str(path))


def test_monolithic_sidecars_without_split_still_load(exported, tmp_path):
    _, mono_path, _ = exported["saddle4"]
    shutil.copy(mono_path, tmp_path / mono_path.name)
    data = json.loads(mono_path.with_suffix(".json").read_text())
    assert data["split"] is None
    del data["split"]                                # a sidecar written before the field existed
    (tmp_path / mono_path.name).with_suffix(".json").write_text(json.dumps(data))
    backend = OnnxRuntimeBackend(str(tmp_path / mono_path.name), num_threads=1)
    assert backend.sidecar.split is None and not backend.split
    frames = _frames(4, seed=2)
    assert backend.infer(frames, view_keys=list(range(4))).timings.keys() == {"infer_s"}   # keys ignored


def test_split_needs_an_any_view_network(tmp_path):
    with pytest.raises(ValueError, match="--split needs a single any-view DA3 network"):
        export_model_to_onnx(reduced_model("mono"), tmp_path / "m.onnx", views=2, height=H, width=W,
                             verbose=False, split=True)


def test_int8_split_quantises_both_graphs(model, exported, tmp_path):
    sc = export_model_to_onnx(model, tmp_path / "q.onnx", views=4, height=H, width=W, verbose=False, split=True,
                              precision="int8_dynamic")
    assert sc.extra["quantized_matmuls"] > 0 and sc.extra["encoder_quantized_matmuls"] > 0
    split = OnnxRuntimeBackend(str(tmp_path / "q.onnx"), num_threads=2)
    mono = OnnxRuntimeBackend(str(exported["saddle4"][1]), num_threads=2)
    frames = _frames(4, seed=4)
    got, ref = split.infer(frames, view_keys=list(range(4))), mono.infer(frames)
    assert _max_rel(got.depth, ref.depth) <= 5e-2   # int8 tolerance of test_export_int8


def test_tensorrt_builds_two_engines_from_one_split_artefact(exported, tmp_path):
    from da3_ros.artifact.errors import BackendUnavailableError
    from da3_ros.export.tensorrt_build import build_engine, import_tensorrt

    try:
        _, module_name = import_tensorrt()
    except BackendUnavailableError as exc:
        pytest.skip(f"no TensorRT builder: {exc}")
    split_path, _, sc = exported["saddle4"]
    engine = tmp_path / "s.engine"
    esc = build_engine(split_path, engine)
    encoder_engine = split_graph_path(engine, ENCODER_GRAPH)
    assert engine.stat().st_size > 0 and encoder_engine.stat().st_size > 0
    assert esc.artifact == "engine" and esc.tensorrt_module == module_name
    assert (esc.split.encoder.file, esc.split.window.file) == ("s.encoder.engine", "s.engine")
    assert esc.split.tokens == sc.split.tokens
    assert esc.split.window.inputs == sc.split.window.inputs
    assert set(validate_split(read_sidecar(engine), engine)) == {"encoder", "window"}


def test_window_processor_passes_snapshot_keys_and_keeps_the_outputs(model, tmp_path):
    from da3_ros.geometry.camera import PinholeCamera
    from da3_ros.pipeline.processor_config import ProcessorConfig
    from da3_ros.pipeline.window_processor import WindowProcessor
    from da3_ros.synthetic.sequence import SyntheticSequence
    from window_processing import process_frame

    h, w = 112, 154
    for name, split in (("m", False), ("s", True)):
        export_model_to_onnx(model, tmp_path / f"{name}.onnx", views=3, height=h, width=w, ref_view="first",
                             verbose=False, split=split)
    backends = {name: OnnxRuntimeBackend(str(tmp_path / f"{name}.onnx"), num_threads=2) for name in ("m", "s")}
    config = ProcessorConfig(window_size=3, point_stride=4, min_depth=0.01, max_depth=1e3, confidence_threshold=1.0)
    procs = {name: WindowProcessor(b, config) for name, b in backends.items()}
    seq = SyntheticSequence(width=320, height=240)
    cam = PinholeCamera(seq.width, seq.height, seq.K)
    frames = 6
    for i in range(frames):
        f = seq.frame(i)
        outs = {name: process_frame(p, f.rgb, int(f.stamp * 1e9), cam) for name, p in procs.items()}
        ref = outs["m"].reference.depth
        assert np.isfinite(ref).any()
        got = outs["s"].reference.depth
        both = np.isfinite(ref) & np.isfinite(got)
        assert (np.isfinite(ref) == np.isfinite(got)).all() and both.any()
        assert np.max(np.abs(got[both] - ref[both])) <= SPLIT_RTOL * np.max(np.abs(ref[both])), i
    d = backends["s"].describe()
    assert d["encoded_views_total"] + d["reused_views_total"] == 3 * frames
    assert d["reused_views_total"] > 0 and d["cached_views"] <= 3    # keyframes' tokens reused, bounded


def test_split_with_descriptor_gives_it_from_the_encoder(model, tmp_path):
    """``--split --with-descriptor``: the descriptor is taken before cross-view attention, so it is an output of
    the per-view encoder (cached with the view's tokens); the artefact's outputs are the monolithic graph's."""
    from da3_ros.artifact.tensors import DESCRIPTOR_OUTPUT

    n, c = 3, model.config.embed_dim
    sc = export_model_to_onnx(model, tmp_path / "d_split.onnx", views=n, height=H, width=W, verbose=False,
                              split=True, with_descriptor=True)
    export_model_to_onnx(model, tmp_path / "d.onnx", views=n, height=H, width=W, verbose=False,
                         with_descriptor=True)
    again = read_sidecar(tmp_path / "d_split.onnx")
    assert again.with_descriptor and again.output_names[-1] == DESCRIPTOR_OUTPUT
    assert again.output_names == read_sidecar(tmp_path / "d.onnx").output_names
    assert [(s.name, s.shape) for s in again.split.encoder.outputs][-1] == (DESCRIPTOR_OUTPUT, [1, 1, c])
    assert DESCRIPTOR_OUTPUT not in again.split.window.output_names
    assert again.split.per_view_outputs == [DESCRIPTOR_OUTPUT] and again.split == sc.split
    assert "--with-descriptor" in again.rebuild_hint() and "--split" in again.rebuild_hint()
    split = OnnxRuntimeBackend(str(tmp_path / "d_split.onnx"), num_threads=2)
    mono = OnnxRuntimeBackend(str(tmp_path / "d.onnx"), num_threads=2)
    tb = TorchBackend(model=model, views=n, height=H, width=W, ref_view=sc.ref_view, with_descriptor=True)
    frames = _frames(n + 2, seed=13)
    for f in range(3):
        window, keys = frames[f:f + n], list(range(f, f + n))
        got, ref = split.infer(window, view_keys=keys), mono.infer(window)
        assert got.timings["encoded_views"] == (n if f == 0 else 1)
        assert got.descriptor.shape == (n, c)
        _assert_same(got, ref, SPLIT_RTOL, f)
        _assert_same(split.infer(window), ref, SPLIT_RTOL, (f, "no keys"))
        _assert_same(tb.infer(window, view_keys=keys), ref, TORCH_RTOL, (f, "torch cached"))
        _assert_same(tb.infer(window), ref, TORCH_RTOL, (f, "torch"))
    data = json.loads((tmp_path / "d_split.json").read_text())
    data["outputs"][-1]["shape"] = [1, n + 1, c]
    (tmp_path / "d_split.json").write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match="encoder descriptor"):
        OnnxRuntimeBackend(str(tmp_path / "d_split.onnx"))
