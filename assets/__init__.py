"""Software-defined assets, one sub-package per group."""
