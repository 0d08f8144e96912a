"""The end-to-end demo (``da3-demo`` / ``make demo``): model preparation, a player that publishes a
camera sequence over DDS, the node as its own process, a recorder of every output, and the report."""
