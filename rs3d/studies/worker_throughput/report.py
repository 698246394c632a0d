"""The worker-throughput table: rows in a fixed order, speeds relative to raw decord (row 2), and the README's
targets checked by wall and by CPU time."""
from __future__ import annotations

from dataclasses import dataclass, field

from rs3d.studies.worker_throughput.timing import Timing
from rs3d.utils.tables import markdown_table

ROW_ORDER = ("1", "1c", "1d", "2", "2p", "3", "4a", "4b", "5a", "5b", "5c", "5d")


@dataclass
class Report:
    """All timings of one run, keyed by row, with the table and the target checks."""

    timings: dict[str, Timing] = field(default_factory=dict)

    def add(self, *timings: Timing) -> None:
        """Add (or replace) rows."""
        for timing in timings:
            self.timings[timing.key] = timing

    def ratio(self, a: str, b: str, cpu: bool = False) -> float:
        """Speed of row ``a`` over row ``b`` (> 1: ``a`` is faster), by wall or by CPU time per clip."""
        if cpu:
            return self.timings[b].cpu_ms_per_clip / self.timings[a].cpu_ms_per_clip
        return self.timings[b].ms_per_clip / self.timings[a].ms_per_clip

    def rows(self) -> list[list[str]]:
        """Table rows in ROW_ORDER; the ratios are speeds relative to row (2)."""
        reference = self.timings.get("2")
        rows = []
        for key in ROW_ORDER:
            if key in self.timings:
                t = self.timings[key]
                wall = reference.ms_per_clip / t.ms_per_clip if reference else float("nan")
                cpu = reference.cpu_ms_per_clip / t.cpu_ms_per_clip if reference else float("nan")
                rows.append([f"({key})", t.name, t.videos, f"{t.per_second:.2f}", f"{t.ms_per_clip:.1f}",
                             f"{t.cpu_ms_per_clip:.1f}", f"{wall:.2f}", f"{cpu:.2f}", str(t.clips)])
        return rows

    def table(self) -> str:
        """The rows as a Markdown table."""
        headers = ["#", "pipeline", "videos", "clips/s", "ms/clip", "CPU ms/clip", "x (2)", "x (2) CPU", "timed"]
        return markdown_table(headers, self.rows())

    def checks(self) -> list[tuple[str, float, float, float, str]]:
        """(description, wall ratio, CPU ratio, target, verdict) for each target present in this run; the verdict
        is PASS or FAIL when wall and CPU time agree, else MIXED (the machine's load decided it)."""
        targets = [("(1) rs3d train vs (2) raw decord, same indices", "1", "2", 0.8),
                   ("(1) rs3d train vs (3) pytorchvideo", "1", "3", 2.0),
                   ("(4a) rs3d test vs (4b) per-view decoding", "4a", "4b", 5.0),
                   ("(5c) rs3d reader on prepared vs (2) raw decord on originals", "5c", "2", 3.0),
                   ("(1d) worker with augmentation on the device vs (1) in the worker, originals", "1d", "1", 1.1),
                   ("(5d) worker with augmentation on the device vs (5a) in the worker, prepared", "5d", "5a", 1.4)]
        out = []
        for text, a, b, target in targets:
            if a in self.timings and b in self.timings:
                wall, cpu = self.ratio(a, b), self.ratio(a, b, cpu=True)
                verdict = "PASS" if min(wall, cpu) >= target else "FAIL" if max(wall, cpu) < target else "MIXED"
                out.append((text, wall, cpu, target, verdict))
        return out
