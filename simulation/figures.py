"""The figures per policy: one value per seed, then the mean over seeds with a 95% interval."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from simulation.runner import RunResult

COLUMNS = (
    "fill_rate",
    "fill_rate_2h",
    "median_minutes_to_fill",
    "p90_minutes_to_fill",
    "texts_per_fill",
    "disappointed_per_fill",
    "texts_per_patient_week",
)

# Student's t, 97.5th percentile, by degrees of freedom (the standard table; beyond 30, ~1.96).
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042,
}  # fmt: skip


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def per_seed(run: RunResult) -> dict[str, float]:
    """One run's figures. A run that filled nothing has no time to fill and no per-fill ratios."""
    fills = run.filled
    return {
        "fill_rate": run.filled / run.cancellations if run.cancellations else math.nan,
        "fill_rate_2h": run.filled_2h / run.cancellations if run.cancellations else math.nan,
        "median_minutes_to_fill": quantile(run.minutes_to_fill, 0.5),
        "p90_minutes_to_fill": quantile(run.minutes_to_fill, 0.9),
        "texts_per_fill": run.texts / fills if fills else math.nan,
        "disappointed_per_fill": run.disappointed / fills if fills else math.nan,
        "texts_per_patient_week": float(run.max_texts_patient_week),
        # not in summary.csv, but in the report
        "acceptance": run.accepted / run.offers if run.offers else math.nan,
        "offers_per_fill": run.offers / fills if fills else math.nan,
    }


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    seeds: int

    def text(self, digits: int = 2) -> str:
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.low):  # one seed: no interval
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def estimate(values: list[float]) -> Estimate:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(mean, math.nan, math.nan, 1)
    half = _T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return Estimate(mean, mean - half, mean + half, len(values))


def summarise(runs: list[RunResult]) -> dict[str, Estimate]:
    rows = [per_seed(run) for run in runs]
    names = rows[0].keys() if rows else COLUMNS
    return {name: estimate([row[name] for row in rows]) for name in names}


def by_language(runs: list[RunResult]) -> dict[str, dict[str, float]]:
    """Offer share and acceptance per language, over all seeds of one policy."""
    offers: dict[str, int] = {}
    accepted: dict[str, int] = {}
    for run in runs:
        for language, counts in run.by_language.items():
            offers[language] = offers.get(language, 0) + counts["offers"]
            accepted[language] = accepted.get(language, 0) + counts["accepted"]
    total = sum(offers.values()) or 1
    return {
        language: {
            "offer_share": offers[language] / total,
            "acceptance": accepted[language] / offers[language] if offers[language] else math.nan,
        }
        for language in sorted(offers)
    }
