"""`da3-export` command line: every subcommand prints --help; failures exit non-zero with one line
on stderr that gives the reason."""
import subprocess
import sys

import pytest

from da3_ros.cli.export_main import main

HELP_FLAGS = {
    "onnx": ["--checkpoint", "--views", "--height", "--width", "--ref-view", "--pose-conditioned", "--with-rays",
             "--output"],
    "engine": ["--onnx", "--precision", "--workspace-gb", "--timing-cache", "--output"],
    "check": ["--model", "--checkpoint", "--images"],
}


@pytest.mark.parametrize("command", list(HELP_FLAGS))
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in HELP_FLAGS[command]:
        assert flag in out, flag


def test_top_level_help_lists_subcommands():
    proc = subprocess.run([sys.executable, "-m", "da3_ros.cli.export_main", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    assert "{onnx,engine,check}" in proc.stdout


def _one_line_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert len(err.splitlines()) == 1 and err.startswith("da3-export: error: ")
    return err


def test_missing_checkpoint_fails_with_reason(tmp_path, capsys):
    err = _one_line_error(capsys, ["onnx", "--checkpoint", str(tmp_path / "nope"), "--views", "2", "--height",
                                   "280", "--width", "504", "--output", str(tmp_path / "x.onnx"), "--quiet"])
    assert "nope" in err and "neither an existing file/directory nor a Hugging Face repo id" in err
    assert not (tmp_path / "x.onnx").exists()


def test_low_opset_refused(tmp_path, capsys):
    err = _one_line_error(capsys, ["onnx", "--checkpoint", str(tmp_path), "--views", "2", "--height", "280",
                                   "--width", "504", "--opset", "17", "--output", str(tmp_path / "x.onnx")])
    assert "opset must be >= 18, got 17" in err


def test_engine_without_sidecar_fails_with_reason(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"junk")
    err = _one_line_error(capsys, ["engine", "--onnx", str(tmp_path / "m.onnx"), "--output",
                                   str(tmp_path / "m.engine")])
    assert "m.onnx is not a readable ONNX file" in err and "re-export with da3-export onnx" in err
    assert not (tmp_path / "m.engine").exists()


def test_bad_argument_values_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["onnx", "--checkpoint", "x", "--views", "0", "--height", "280", "--width", "504", "--output", "y"])
    assert info.value.code == 2
    assert "must be > 0, got 0" in capsys.readouterr().err
