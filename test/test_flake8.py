"""flake8 over the package, the tests, the benchmarks and the launch file (ament_flake8, as ament_python packages do).

The configuration is the ``[flake8]`` section of setup.cfg (passed as ``--config``), the same one plain ``flake8``
reads from the repository root.
"""
from pathlib import Path

import pytest
from ament_flake8.main import main_with_errors

REPO = Path(__file__).resolve().parents[1]
PATHS = ["da3_ros", "test", "bench", "launch", "setup.py"]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8(monkeypatch):
    monkeypatch.chdir(REPO)  # ament_flake8 also excludes the folders starting with '.' or '_' below the cwd
    rc, errors = main_with_errors(argv=["--config", str(REPO / "setup.cfg"), *PATHS])
    assert rc == 0, f"Found {len(errors)} code style errors / warnings:\n" + "\n".join(errors)
