"""``da3_node`` console entry point (``ros2 run da3_ros da3_node --ros-args ...``)."""
import sys


def main(argv=None) -> int:
    from da3_ros.node.da3_node import main as node_main

    return node_main(args=sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
