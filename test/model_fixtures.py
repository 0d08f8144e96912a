"""Small exported models for pipeline/node tests (random weights, reduced DA3 architecture)."""
from __future__ import annotations

from pathlib import Path


def export_reduced_onnx(out_dir: Path, *, views: int = 3, height: int = 112, width: int = 154,
                        ref_view: str = "first", kind: str = "multi_view", seed: int = 0, split: bool = False,
                        with_descriptor: bool = False) -> Path:
    """Export the reduced multi-view (or mono) DA3 model to ONNX + sidecar; returns the .onnx path.

    ``split``: the ``--split`` artefact (window graph at the path, ``.encoder.onnx`` beside it, one sidecar);
    ``with_descriptor``: the graph also outputs each view's place-recognition descriptor (``--with-descriptor``)."""
    from da3_ros.export.onnx_export import export_model_to_onnx
    from da3_ros.export.reduced_config import reduced_model

    suffix = ("_split" if split else "") + ("_desc" if with_descriptor else "")
    path = Path(out_dir) / f"reduced_{kind}_n{views}_{height}x{width}{suffix}.onnx"
    if not path.exists():
        export_model_to_onnx(reduced_model(kind, seed=seed), path, views=views, height=height, width=width,
                             ref_view=ref_view, verbose=False, split=split,
                             with_descriptor=with_descriptor)
    assert path.exists() and path.with_suffix(".json").exists(), f"export wrote no graph + sidecar at {path}"
    return path
