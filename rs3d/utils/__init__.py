"""The ground floor: helpers that import nothing else of rs3d (atomic writes, errors, precision, process
setup, distributed ranks, tables, FLOP counts, an H.264 writer)."""
