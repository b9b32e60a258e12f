"""Engine-agnostic transformations: PySpark DataFrame API in, DataFrame out, given an ``Engine``."""
