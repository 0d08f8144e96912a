"""The TensorRT version rule of the tensorrt backend (issue 19, item 8): DA3 engines need TensorRT >= 10.14
(10.3, JetPack 6.1 / 6.2's, gives frame-to-frame scale jumps). The function that decides is tested with version
strings as ``tensorrt.__version__`` spells them; no TensorRT is imported or imitated."""
import pytest

from da3_ros.backends.tensorrt_backend import MIN_TENSORRT_VERSION, tensorrt_version_problem


@pytest.mark.parametrize("version", ["10.14.0", "10.14.1.48", "10.16", "11.0.0.1", "12"])
def test_new_enough_tensorrt_is_accepted(version):
    assert MIN_TENSORRT_VERSION == (10, 14)
    assert tensorrt_version_problem(version) is None


@pytest.mark.parametrize("version", ["10.3.0.30", "10.13.3.9", "10.9", "8.6.2.3", "10"])
def test_older_tensorrt_is_refused_with_the_fix(version):
    message = tensorrt_version_problem(version)
    assert message.startswith(f"TensorRT {version} is too old for DA3 engines: they need TensorRT >= 10.14")
    assert "10.3, JetPack 6.1 / 6.2's, gives frame-to-frame scale jumps" in message
    assert "a CUDA build of torch" in message and "backend onnxruntime" in message and "README 'Jetson'" in message


def test_unreadable_versions_are_refused_and_tensorrt_rtx_is_not_checked():
    for version in ("unknown", "", "ten.3"):
        assert tensorrt_version_problem(version).startswith(f"cannot read the TensorRT version {version!r}")
    assert tensorrt_version_problem("1.0.0.21", module="tensorrt_rtx") is None   # TensorRT-RTX: its own versions
    assert tensorrt_version_problem("10.3.0.30", module="tensorrt") is not None


def test_the_readme_has_the_jetson_section():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n### Jetson", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    for needed in ("10.14", "10.3", "torch.cuda.is_available()", "tensorrt.__version__", "backend: onnxruntime"):
        assert needed in section, needed
