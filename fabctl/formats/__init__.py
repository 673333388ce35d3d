"""Job files: writers (and readers, for round-trip tests) of SL1 archives, laser G-code and CLI.

Writers take plain arrays and dataclasses (``fabctl.slicestack.SliceStack``, render callables); they never
import ``fabctl.mesh``.
"""
