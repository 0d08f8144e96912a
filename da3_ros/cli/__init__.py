"""Console entry points (thin wrappers; the logic lives in the core modules)."""
