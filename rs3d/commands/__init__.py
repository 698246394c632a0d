"""Command-line entry points (``rs3d-train``, ``rs3d-test``, ``rs3d-predict``, ...): the top layer, which may
import every other part of rs3d; ``tools/*.py`` are thin scripts calling these."""
