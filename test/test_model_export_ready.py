"""The model traces to ONNX (legacy exporter) at a fixed (N, H, W) without data-dependent ops.

Smoke test of "export-ready by construction" (the export CLI and its tests live in da3_ros.export):
static tables, no NonZero / Einsum / ScatterND, pose encoding as a plain input, ray branch on
request; ONNX Runtime reproduces the PyTorch outputs.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from da3_ros.model import build_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class _Graph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images, pose_encoding):
        out = self.model(images, ref_view="saddle_balanced", return_rays=True)
        cond = self.model(images, pose_encoding=pose_encoding)
        return (out["depth"], out["depth_conf"], out["extrinsics"], out["intrinsics"],
                out["ray"], out["ray_conf"], cond["extrinsics"])


@pytest.mark.slow
def test_legacy_onnx_export_is_static_and_matches(tmp_path):
    torch.manual_seed(0)
    model = build_model("da3-small").prepare(112, 140)
    images = torch.randn(1, 3, 3, 112, 140)
    pose = torch.randn(1, 3, 9)
    graph = _Graph(model)
    path = tmp_path / "da3.onnx"
    torch.onnx.export(graph, (images, pose), str(path), dynamo=False, opset_version=17,
                      input_names=["images", "pose_encoding"])
    ops = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    assert not {"NonZero", "Einsum", "ScatterND", "Loop", "If"} & set(ops), ops
    assert ops["ArgMin"] == 1  # saddle-balanced reference choice stays input-dependent
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in (1, 2):
        x = torch.randn(1, 3, 3, 112, 140, generator=torch.Generator().manual_seed(seed))
        got = sess.run(None, {"images": x.numpy(), "pose_encoding": pose.numpy()})
        with torch.inference_mode():
            ref = graph(x, pose)
        for g, r in zip(got, ref):
            r = r.numpy()
            assert g.shape == r.shape
            assert np.abs(g - r).max() <= 1e-4 * np.abs(r).max()
