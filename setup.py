"""ament_python setup for da3_ros (also pip-installable into the development venv)."""
from glob import glob

from setuptools import find_packages, setup

package_name = "da3_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["da3_ros", "da3_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/rviz", glob("rviz/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="da3_ros maintainers",
    maintainer_email="da3-ros-maintainers@example.com",
    description="Depth Anything 3 multi-view depth + pose as a ROS 2 node",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "da3_node = da3_ros.cli.node_main:main",
            "da3-export = da3_ros.cli.export_main:main",
            "da3-demo = da3_ros.cli.demo_main:main",
            "da3-bench = da3_ros.cli.bench_main:main",
        ],
    },
)
