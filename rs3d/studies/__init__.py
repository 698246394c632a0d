"""Studies and benchmarks built on the library (timing, model comparison, scaling, the data-pipeline benchmark).

Not part of the library core: nothing under ``rs3d/`` outside this package and ``rs3d.commands`` imports it.
"""
