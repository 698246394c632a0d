"""The statistics of a comparison (mean ± std over seeds per config, paired intervals and McNemar per pair) and
its reports: Markdown, CSV files and JSON with every per-seed number, the intervals and the held-equal keys."""
from __future__ import annotations

import csv
import itertools
import json
from dataclasses import asdict

from rs3d.studies.budget import HEADLINE, BudgetCheck
from rs3d.studies.runs import ACCURACY_KEYS, RunResult, correctness_matrix
from rs3d.studies.statistics import mcnemar, mean_std, paired_bootstrap_diff
from rs3d.utils.atomic import atomic_open, atomic_write_text
from rs3d.utils.tables import markdown_table

BOOTSTRAP_METHOD = ("percentile bootstrap of the difference in multi-view top-1; each resample draws the test videos "
                    "with replacement (the same videos for both configs) and, for each config independently, its "
                    "seeds with replacement")
SPEED_KEYS = ["params (M)", "GFLOPs/view", "infer clips/s b1", "infer clips/s max", "max batch", "train clips/s",
              "train peak MiB"]


def config_stats(runs: list[RunResult]) -> dict:
    """{accuracy key: mean, accuracy key + ' std': std} over the runs (seeds) of one config."""
    out: dict = {"seeds": len(runs)}
    for key in ACCURACY_KEYS:
        out[key], out[f"{key} std"] = mean_std([run.accuracy.get(key) for run in runs])
    return out


def verdict(pair: dict) -> str:
    """The interval in words: which config is better at this level, or that they are not distinguishable."""
    level = round(100 * pair["level"])
    if pair["ci_low"] <= 0.0 <= pair["ci_high"]:
        return f"not distinguishable at {level}%"
    better, worse = (pair["a"], pair["b"]) if pair["ci_low"] > 0 else (pair["b"], pair["a"])
    return f"{better} better than {worse} at {level}%"


def compare_pairs(groups: dict[str, list[RunResult]], videos: list[str], all_pairs: bool = False,
                  resamples: int = 10000, level: float = 0.95, seed: int = 0) -> list[dict]:
    """Each config against the first (or every pair): difference in multi-view top-1 with its bootstrap interval,
    and McNemar's test when both configs have a single run."""
    names = list(groups)
    pairs = itertools.combinations(names, 2) if all_pairs else [(names[0], n) for n in names[1:]]
    out = []
    for a, b in pairs:
        correct_a, correct_b = correctness_matrix(groups[a], videos), correctness_matrix(groups[b], videos)
        interval = paired_bootstrap_diff(correct_a, correct_b, resamples, level, seed)
        pair = {"a": a, "b": b, "seeds_a": len(correct_a), "seeds_b": len(correct_b), "videos": len(videos),
                "diff_top1": interval.diff, "ci_low": interval.low, "ci_high": interval.high, "level": level,
                "includes_zero": interval.includes_zero, "mcnemar": None}
        if len(correct_a) == 1 and len(correct_b) == 1:
            pair["mcnemar"] = asdict(mcnemar(correct_a[0], correct_b[0]))
        pair["verdict"] = verdict(pair)
        out.append(pair)
    return out


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def _speed_cell(row: dict, key: str) -> str:
    text = _fmt(row.get(key))
    return f"{text} ({row['max batch']})" if key == "infer clips/s max" and row.get("max batch") else text


def _fmt(value: object, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else ("" if value is None else str(value))


def markdown(report: dict) -> str:
    """The comparison as Markdown: configs (mean ± std over seeds), pairs with intervals, per-seed runs, budget."""
    configs, pairs, budget = report["configs"], report["pairs"], report["budget"] or {}
    speed = [k for k in SPEED_KEYS if any(c.get(k) is not None for c in configs) and k != "max batch"]
    accuracy = ["top-1 1-view", "top-1 multi-view", "top-5 multi-view", "mean class acc multi-view"]
    rows = [[c["model"], str(c.get("seeds", "")), *[_speed_cell(c, k) for k in speed],
             *[_pm(c.get(k), c.get(f"{k} std")) for k in accuracy]] for c in configs]
    headers = [f"{k} (batch)" if k == "infer clips/s max" else k for k in speed]
    parts = [markdown_table(["model", "seeds", *headers, *[f"{k} (%)" for k in accuracy]], rows)]
    if pairs:
        level = round(100 * pairs[0]["level"])
        rows = [[f"{p['a']} − {p['b']}", f"{p['diff_top1']:+.2f}", f"[{p['ci_low']:+.2f}, {p['ci_high']:+.2f}]",
                 p["verdict"], (f"b={p['mcnemar']['b']} c={p['mcnemar']['c']} p={p['mcnemar']['p_exact']:.3g}"
                                if p["mcnemar"] else "- (several seeds)")] for p in pairs]
        parts += ["", markdown_table(["pair", "Δ top-1 multi-view (pp)", f"{level}% CI", "verdict",
                                      "McNemar exact (single runs)"], rows),
                  "", f"Interval: {BOOTSTRAP_METHOD}; {report['bootstrap']['resamples']} resamples over "
                      f"{budget['videos']} videos of split {budget['split']!r}."]
    if not budget:  # speed only: no run folders
        return "\n".join(parts) + "\n"
    runs = [[r["model"], str(r["seed"]), *[_fmt(r.get(k)) for k in ACCURACY_KEYS],
             _fmt(r.get("train_seconds"), 0), r["run_dir"]] for r in report["runs"]]
    parts += ["", markdown_table(["model", "seed", *[f"{k} (%)" for k in ACCURACY_KEYS], "train s", "run"], runs)]
    held = budget["held_equal"]
    shown = ", ".join(f"{k}={held[k]!r}" for k in HEADLINE if k in held)
    parts += ["", f"Held equal: {shown}; {budget['videos']} test videos and {len(budget['class_names'])} class "
                  f"names identical in every run; {len(held)} config keys in all (listed in the JSON)."]
    if budget["differing"]:
        parts.append("Differing by design: " + ", ".join(sorted(budget["differing"]))
                     + (f" (allowed: {' '.join(budget['allowed'])})" if budget["allowed"] else "") + ".")
    return "\n".join(parts) + "\n"


def build_report(rows: list[dict], groups: dict[str, list[RunResult]], budget: BudgetCheck | None,
                 pairs: list[dict], resamples: int) -> dict:
    """Everything the comparison found, JSON-ready: config rows, per-seed runs, pairs, budget and method."""
    runs = [{"model": name, "run_dir": run.run_dir, "seed": run.seed, "train_seconds": run.train_seconds,
             **run.accuracy} for name, group in groups.items() for run in group]
    budget_dict = None
    if budget:
        budget_dict = {"held_equal": budget.held_equal, "differing": budget.differing, "allowed": budget.allowed,
                       "videos": len(budget.videos), "class_names": budget.class_names, "split": budget.split}
    return {"configs": rows, "runs": runs, "pairs": pairs, "budget": budget_dict,
            "bootstrap": {"method": BOOTSTRAP_METHOD, "resamples": resamples, "statistic": "multi-view top-1"}}


def write_reports(report: dict, stem: str) -> list[str]:
    """``stem``.md / .json, ``stem``.csv (configs), ``stem``_runs.csv, ``stem``_pairs.csv and ``stem``_budget.csv."""
    written = [f"{stem}.md", f"{stem}.json", f"{stem}.csv"]
    atomic_write_text(f"{stem}.md", markdown(report))
    atomic_write_text(f"{stem}.json", json.dumps(report, indent=1, default=list) + "\n")
    _write_csv(f"{stem}.csv", report["configs"])
    if report["budget"]:
        _write_csv(f"{stem}_runs.csv", report["runs"])
        pairs = [{**{k: v for k, v in p.items() if k != "mcnemar"},
                  **{f"mcnemar_{k}": v for k, v in (p["mcnemar"] or {}).items()}} for p in report["pairs"]]
        _write_csv(f"{stem}_pairs.csv", pairs, ["a", "b", "seeds_a", "seeds_b", "videos", "diff_top1", "ci_low",
                                                "ci_high", "level", "includes_zero", "verdict", "mcnemar_b",
                                                "mcnemar_c", "mcnemar_p_exact", "mcnemar_p_chi2"])
        budget = report["budget"]
        keys = [{"key": k, "status": "held equal", "value": v} for k, v in budget["held_equal"].items()]
        keys += [{"key": k, "status": "differs by design", "value": json.dumps(v, default=list)}
                 for k, v in budget["differing"].items()]
        _write_csv(f"{stem}_budget.csv", keys, ["key", "status", "value"])
        written += [f"{stem}_runs.csv", f"{stem}_pairs.csv", f"{stem}_budget.csv"]
    return written


def _write_csv(path: str, rows: list[dict], columns: list[str] | None = None) -> None:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
