"""The outputs: summary.csv, two plots and a Markdown report."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

from simulation.figures import COLUMNS, Estimate, by_language, summarise  # noqa: E402
from simulation.runner import RunResult  # noqa: E402
from simulation.scenario import Scenario  # noqa: E402

DIGITS = {"fill_rate": 3, "fill_rate_2h": 3, "disappointed_per_fill": 2}


def write_summary(path: Path, summaries: dict[str, dict[str, Estimate]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["policy", *COLUMNS])
        for policy, figures in summaries.items():
            writer.writerow([policy, *(_number(figures[c].mean) for c in COLUMNS)])


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


def plot_tradeoff(path: Path, summaries: dict[str, dict[str, Estimate]]) -> None:
    figure, axes = plt.subplots(figsize=(7, 5))
    for policy, figures in summaries.items():
        x, y = figures["texts_per_fill"], figures["fill_rate"]
        axes.errorbar(
            x.mean,
            y.mean,
            xerr=[[x.mean - x.low], [x.high - x.mean]] if not math.isnan(x.low) else None,
            yerr=[[y.mean - y.low], [y.high - y.mean]] if not math.isnan(y.low) else None,
            fmt="o",
            capsize=3,
            label=policy,
        )
        axes.annotate(policy, (x.mean, y.mean), textcoords="offset points", xytext=(6, 6))
    axes.set_xlabel("texts per filled slot (mean, 95% interval)")
    axes.set_ylabel("fill rate")
    axes.set_title("Fill rate against texts per fill")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_time_to_fill(path: Path, runs: dict[str, list[RunResult]]) -> None:
    figure, axes = plt.subplots(figsize=(8, 5))
    names = list(runs)
    data = [
        [max(m, 0.1) for run in runs[name] for m in run.minutes_to_fill] or [math.nan]
        for name in names
    ]
    axes.boxplot(data, tick_labels=names, showfliers=False)
    axes.set_ylabel("minutes from entry to fill (filled slots, all seeds; log scale)")
    axes.set_yscale("log")
    axes.set_title("Time to fill per policy (whiskers 1.5 IQR, outliers hidden)")
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown(
    scenario: Scenario,
    runs: dict[str, list[RunResult]],
    summaries: dict[str, dict[str, Estimate]],
    wall_seconds: float,
    checks: list[str],
) -> str:
    seeds = max((len(r) for r in runs.values()), default=0)
    first = next(iter(runs.values()))
    cancellations = statistics.fmean(r.cancellations for r in first) if first else 0
    lines = [
        f"# Simulation: scenario `{scenario.name}`",
        "",
        f"{seeds} seeds per policy, the same seeds for every policy; about {cancellations:.0f}"
        f" cancellations a run over {scenario.days} days of arrivals"
        f"{' (replayed from ' + scenario.replay_csv + ')' if scenario.replay_csv else ''},"
        f" {scenario.initial_patients} patients on the waitlist at the start."
        f" Wall time {wall_seconds / 60:.1f} min.",
        "",
        "Means over seeds with 95% intervals (Student's t). A text is any SMS the engine sent"
        " (offers and 'just taken' or 'withdrawn' notices). Disappointed: a patient who said yes"
        " after the slot was taken. texts_per_patient_week: the most texts any one patient got in"
        " any 7 days.",
        "",
        "| policy | " + " | ".join(COLUMNS) + " | acceptance | offers_per_fill |",
        "| --- " * (len(COLUMNS) + 3) + "|",
    ]
    for policy, figures in summaries.items():
        cells = [figures[c].text(DIGITS.get(c, 1)) for c in COLUMNS]
        cells += [figures["acceptance"].text(3), figures["offers_per_fill"].text(1)]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    shares = ", ".join(f"{k} {v:.0%}" for k, v in scenario.languages.items())
    lines += ["", "## Equity: offer share and acceptance by language", ""]
    lines += [f"The waitlist's patients by language (scenario): {shares}.", ""]
    lines += ["| policy | language | share of offers | acceptance |", "| --- | --- | --- | --- |"]
    for policy, policy_runs in runs.items():
        for language, figures in by_language(policy_runs).items():
            lines.append(
                f"| {policy} | {language} | {figures['offer_share']:.1%} |"
                f" {figures['acceptance']:.1%} |"
            )
    adaptive = runs.get("adaptive", [])
    sizes = [s for run in adaptive for s in run.batch_sizes]
    holds = [h for run in adaptive for h in run.batch_holds]
    if sizes:
        lines += [
            "",
            "## The adaptive batches",
            "",
            f"{len(sizes)} batches: size median {statistics.median(sizes):.0f}"
            f" (min {min(sizes)}, max {max(sizes)}), hold median {statistics.median(holds):.0f} min"
            f" (min {min(holds):.0f}, max {max(holds):.0f}).",
        ]
    if checks:
        lines += ["", "## Adaptive against its goals", "", *checks]
    lines += [
        "",
        "## Plots",
        "",
        "![fill rate against texts per fill](fill_rate_vs_texts.png)",
        "",
        "![time to fill per policy](time_to_fill.png)",
        "",
    ]
    return "\n".join(lines)


def goal_checks(summaries: dict[str, dict[str, Estimate]]) -> list[str]:
    """Adaptive's goals against all-at-once and fixed-3x7, each with the numbers behind it."""
    names = ("adaptive", "all-at-once", "fixed-3x7")
    if not all(n in summaries for n in names):
        return []
    a, every, fixed = (summaries[n] for n in names)

    def line(ok: bool, text: str) -> str:
        return f"- {'met' if ok else 'NOT met'}: {text}"

    fill, fill_all, fill_fixed = (
        a["fill_rate"].mean,
        every["fill_rate"].mean,
        fixed["fill_rate"].mean,
    )
    med, med_fixed = a["median_minutes_to_fill"].mean, fixed["median_minutes_to_fill"].mean
    texts, texts_all = a["texts_per_fill"].mean, every["texts_per_fill"].mean
    dis, dis_all = a["disappointed_per_fill"].mean, every["disappointed_per_fill"].mean
    return [
        line(
            fill >= fill_all - 0.01,
            f"fill rate within 1 point of all-at-once: {fill:.1%} against {fill_all:.1%}"
            f" ({(fill - fill_all) * 100:+.1f} points)",
        ),
        line(
            fill >= fill_fixed,
            f"fill rate at least fixed-3x7's: {fill:.1%} against {fill_fixed:.1%}",
        ),
        line(
            med <= med_fixed,
            f"median minutes to fill at or below fixed-3x7's: {med:.1f} against {med_fixed:.1f}",
        ),
        line(
            texts <= texts_all / 2,
            f"at most half the texts per fill of all-at-once: {texts:.1f} against {texts_all:.1f}"
            f" ({texts / texts_all:.0%})",
        ),
        line(
            dis < dis_all,
            f"fewer disappointed yeses per fill than all-at-once: {dis:.3f} against {dis_all:.3f}",
        ),
    ]


def write_all(
    out: Path, scenario: Scenario, runs: dict[str, list[RunResult]], wall_seconds: float
) -> dict[str, dict[str, Estimate]]:
    out.mkdir(parents=True, exist_ok=True)
    summaries = {policy: summarise(policy_runs) for policy, policy_runs in runs.items()}
    write_summary(out / "summary.csv", summaries)
    plot_tradeoff(out / "fill_rate_vs_texts.png", summaries)
    plot_time_to_fill(out / "time_to_fill.png", runs)
    checks = goal_checks(summaries)
    (out / "report.md").write_text(markdown(scenario, runs, summaries, wall_seconds, checks))
    return summaries
