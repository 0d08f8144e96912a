"""Docstring style (ament_pep257 / pydocstyle) of the package, the tests, the benchmarks and the launch file.

Convention: google (summary on the first line, as this code base writes it), without the rules the code base
deliberately does not follow; ``[pydocstyle]`` in setup.cfg mirrors these arguments for plain ``pydocstyle``:
D100-D107 (not every module, class or function has a docstring; ament ignores them too), D205/D415 (a summary
sentence may wrap onto a second line), D209 (closing quotes end the last line of text), D403 (a docstring may start
with an identifier such as ``numpy_to_image`` or ``CameraInfo``).
"""
from pathlib import Path

import pytest
from ament_pep257.main import main

REPO = Path(__file__).resolve().parents[1]
PATHS = ["da3_ros", "test", "bench", "launch", "setup.py"]
IGNORED = ["D100", "D101", "D102", "D103", "D104", "D105", "D106", "D107", "D205", "D209", "D403", "D415"]


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257(monkeypatch):
    monkeypatch.chdir(REPO)
    rc = main(argv=["--convention", "google", "--add-ignore", *IGNORED, "--", *PATHS])
    assert rc == 0, "Found code style errors / warnings (listed on stderr)"
