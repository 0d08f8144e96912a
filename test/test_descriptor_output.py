"""The place-recognition ``descriptor`` output (issue 20): an optional extra output of the model forward and of
the exported ONNX graph (``--with-descriptor``), recorded in the sidecar, returned by the ONNX Runtime, torch
and oracle backends; graphs and sidecars without it stay valid."""
import json

import numpy as np
import pytest
import torch

from da3_ros.artifact.sidecar import Sidecar, read_sidecar, sidecar_path
from da3_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from da3_ros.backends.torch_backend import TorchBackend
from da3_ros.export.onnx_export import export_model_to_onnx
from da3_ros.export.reduced_config import reduced_model
from da3_ros.synthetic.image_descriptor import appearance_descriptor
from da3_ros.synthetic.sequence import SyntheticSequence

H, W = 56, 84
#: ONNX Runtime vs PyTorch on a unit vector: fp32 round-off of a few narrow blocks (parity of the other
#: outputs holds at 1e-4 relative in test_export_reduced)
ATOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("descriptor")
    out = {}
    for name, kind, views in (("multi", "multi_view", 3), ("mono", "mono", 2)):
        model = reduced_model(kind)
        path = root / f"{name}.onnx"
        sidecar = export_model_to_onnx(model, path, views=views, height=H, width=W, verbose=False,
                                       with_descriptor=True)
        out[name] = (model, path, sidecar)
    return out


def _images(views, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(views, H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["multi", "mono"])
def test_graph_and_sidecar_carry_the_descriptor(exported, name):
    model, path, sidecar = exported[name]
    assert sidecar.with_descriptor
    assert sidecar.output_names[-1] == "descriptor"
    dim = model.config.embed_dim
    assert [o.shape for o in sidecar.outputs if o.name == "descriptor"] == [[1, sidecar.views, dim]]
    assert read_sidecar(path).with_descriptor
    assert "--with-descriptor" in sidecar.rebuild_hint()


@pytest.mark.parametrize("name", ["multi", "mono"])
def test_onnxruntime_descriptor_matches_pytorch_and_is_unit(exported, name):
    model, path, sc = exported[name]
    ort_backend = OnnxRuntimeBackend(str(path), num_threads=2)
    torch_backend = TorchBackend(model=model, views=sc.views, height=H, width=W, ref_view=sc.ref_view,
                                 with_descriptor=True)
    images = _images(sc.views, 3)
    got, ref = ort_backend.infer(images).descriptor, torch_backend.infer(images).descriptor
    assert got.shape == ref.shape == (sc.views, model.config.embed_dim) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, ref, atol=ATOL)
    # different images give different descriptors (the output carries signal)
    assert float(np.max(np.abs(got[0] - got[1]))) > 10 * ATOL


def test_descriptor_is_taken_before_cross_view_attention(exported):
    """A view's descriptor does not depend on the other views of its window (pooled before the first global
    block), so a keyframe's descriptor is the same in every window it is part of."""
    model, path, sc = exported["multi"]
    backend = OnnxRuntimeBackend(str(path), num_threads=2)
    a = _images(sc.views, 5)
    b = a.copy()
    b[1:] = _images(sc.views - 1, 6)
    da, db = backend.infer(a), backend.infer(b)
    np.testing.assert_allclose(da.descriptor[0], db.descriptor[0], atol=ATOL)
    assert float(np.max(np.abs(da.depth[0] - db.depth[0]))) > 1e-4   # the views do interact later on


def test_old_sidecars_and_graphs_without_the_descriptor_stay_valid(exported, tmp_path):
    model = reduced_model("multi_view")
    path = tmp_path / "plain.onnx"
    export_model_to_onnx(model, path, views=2, height=H, width=W, verbose=False)
    data = json.loads(sidecar_path(path).read_text())
    assert data.pop("with_descriptor") is False
    sidecar_path(path).write_text(json.dumps(data))   # as written before the field existed
    old = read_sidecar(path)
    assert isinstance(old, Sidecar) and not old.with_descriptor and "descriptor" not in old.output_names
    prediction = OnnxRuntimeBackend(str(path), num_threads=2).infer(_images(2, 1))
    assert prediction.descriptor is None and "descriptor" not in prediction.arrays()
    assert TorchBackend(model=model, views=2, height=H, width=W).infer(_images(2, 1)).descriptor is None


def test_oracle_descriptor_is_a_function_of_the_pixels():
    seq = SyntheticSequence("room_tour", width=96, height=72)
    d = {i: appearance_descriptor(seq.render(i)[0]) for i in (0, 1, 60, 200)}
    assert d[0].shape == (8 * 12 * 3,) and d[0].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d[0]), 1.0, atol=1e-6)
    np.testing.assert_array_equal(d[0], appearance_descriptor(seq.render(0)[0].copy()))   # deterministic
    assert float(d[0] @ d[1]) > 0.9                       # the next frame: nearly the same place
    assert float(d[0] @ d[200]) < float(d[0] @ d[1]) - 0.2   # the other end of the room: different
    mirrored = appearance_descriptor(seq.render(60)[0][:, ::-1])
    np.testing.assert_allclose(mirrored, d[60], atol=1e-6)   # a mirrored look-alike: the same descriptor
