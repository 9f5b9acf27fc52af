"""``lakehouse ml``: train, score and inspect the energy models."""

from __future__ import annotations

import datetime as dt
import sys

import click
from rich.console import Console
from rich.table import Table

console = Console(width=None if sys.stdout.isatty() else 160)


def _settings(run_date: str | None, lake_root: str | None):
    from lakehouse.config import ConfigError, load_settings

    try:
        return load_settings(run_date=run_date, lake_root=lake_root)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("ml")
def ml_cli() -> None:
    """Energy models (consumption forecast, anomaly detection) tracked with MLflow.

    \b
    Examples:
      lakehouse ml train --run-date 2026-11-26      # both models; champion only if better
      lakehouse ml score --run-date 2026-11-26      # champions -> gold/domain=energy/model=prediction
      lakehouse ml champions                        # which version serves each model
    """


@ml_cli.command("train")
@click.option(
    "--run-date", default=None, help="Train on history up to this date (YYYY-MM-DD); default today."
)
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
@click.option(
    "--truth",
    "truth_path",
    default=None,
    help="Anomaly labels CSV; default var/ground_truth/energy_anomalies.csv.",
)
def train(run_date: str | None, lake_root: str | None, truth_path: str | None) -> None:
    """Train both models, log them to MLflow, register them, and give the `champion`
    alias to a new version only if it beats the champion and the baseline on the hold-out."""
    from lakehouse.engine import get_spark
    from lakehouse.ml.training import train_all

    settings = _settings(run_date, lake_root)
    with console.status("building features and training"):
        results = train_all(get_spark(settings, app_name="ml_train"), settings, events_path=truth_path)
    table = Table(title=f"Energy models trained on history up to {settings.run_date}")
    for column in ("model", "version", "promoted", "why", "seconds"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.model_name,
            result.version,
            "yes" if result.decision.promote else "no",
            result.decision.reason,
            f"{result.seconds:.1f}",
        )
    console.print(table)


@ml_cli.command("score")
@click.option(
    "--run-date", default=None, help="Score this date's hours and forecast the next 24 h; default today."
)
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
def score(run_date: str | None, lake_root: str | None) -> None:
    """Score with the champions into gold/domain=energy/model=prediction/."""
    from lakehouse.engine import get_spark
    from lakehouse.ml.scoring import configure_and_score

    settings = _settings(run_date, lake_root)
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    try:
        result = configure_and_score(settings, get_spark(settings, app_name="ml_score"), scored_at)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(
        f"{result.anomaly_rows} anomaly scores ({result.anomaly_model.name} v{result.anomaly_model.version}), "
        f"{result.forecast_rows} forecast hours ({result.forecast_model.name} v{result.forecast_model.version})"
    )


@ml_cli.command("champions")
def champions() -> None:
    """The version of each registered model that holds the `champion` alias."""
    from lakehouse.ml import tracking

    settings = _settings(None, None)
    uri = tracking.configure(settings)
    for name in (tracking.FORECAST_MODEL, tracking.ANOMALY_MODEL):
        version = tracking.champion_version(name)
        console.print(f"{name}: {'version ' + version if version else 'no champion yet'}")
    console.print(f"store: {uri}")


@ml_cli.group("meter")
def meter_cli() -> None:
    """Forecast models of your own meters, trained on their hourly CSV.

    \b
    Example:
      lakehouse ml meter train atelier_b.csv --name "Atelier B"   # -> meter_forecast_atelier_b
    """


@meter_cli.command("train")
@click.argument("csv_path", metavar="CSV", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--timezone",
    default="Europe/Paris",
    show_default=True,
    help="Time zone of timestamps without an offset; the calendar features use it too.",
)
@click.option(
    "--holdout-days",
    default=7,
    show_default=True,
    type=click.IntRange(min=1),
    help="Last days kept for evaluation.",
)
@click.option(
    "--name", default=None, help="Meter name; default the CSV file name. Registered as meter_forecast_<name>."
)
@click.option(
    "--skip-bad-rows", is_flag=True, help="Skip and count unreadable rows instead of stopping at the first."
)
def meter_train(
    csv_path: str, timezone: str, holdout_days: int, name: str | None, skip_bad_rows: bool
) -> None:
    """Train the day-ahead consumption forecast of one meter from its hourly CSV
    (columns timestamp, kWh), evaluate it on the last --holdout-days against the same
    hour last week, log the run to the MLflow experiment `meter_forecast` and register
    the model.

    \b
    Timestamps: ISO 8601 with an offset (2026-03-29T01:00:00+01:00) or local time of
    --timezone (2026-03-29 01:00). Missing hours are allowed (neither trained on nor
    evaluated); a repeated UTC hour with a different kWh is an error. See docs/ml.md.

    \b
    Example:
      lakehouse ml meter train var/meters/atelier_b.csv --name "Atelier B" --holdout-days 7
    """
    from lakehouse.ml import tracking
    from lakehouse.ml.meters import MeterDataError, read_meter_csv, train_meter_forecast

    settings = _settings(None, None)
    try:
        series = read_meter_csv(csv_path, timezone=timezone, skip_bad_rows=skip_bad_rows)
        with console.status("training and logging to MLflow"):
            result = train_meter_forecast(series, settings, holdout_days=holdout_days, name=name)
    except MeterDataError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(
        f"{series.path.name}: {series.rows} rows, {result.hours} hours from {series.hourly['hour_ts'].iloc[0]:%Y-%m-%d %H:%M}Z "
        f"to {series.hourly['hour_ts'].iloc[-1]:%Y-%m-%d %H:%M}Z, {result.missing_hours} missing, "
        f"{result.bad_rows} bad rows skipped, {result.duplicate_rows} identical duplicates"
    )
    console.print(
        f"hold-out from {result.holdout_start_local:%Y-%m-%d %H:%M} {timezone}: "
        f"{result.evaluated_hours} of {result.holdout_hours} hours evaluated "
        "(a reading, and one a week before)"
    )
    table = Table(title=f"Meter {result.meter}, day-ahead forecast")
    for column in ("metric", "model", "same hour last week"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    units = {"mae": "kWh", "rmse": "kWh", "mape": "%", "smape": "%", "cv_rmse": "%", "nmbe": "%"}
    for key, unit in units.items():
        table.add_row(
            f"{key} ({unit})", f"{result.metrics[key]:.3f}", f"{result.metrics['baseline_' + key]:.3f}"
        )
    table.add_row("skill on MAE", f"{result.metrics['skill_mae']:.1%}", "0.0%")
    console.print(table)
    console.print(
        f"MLflow run {result.run_id} (experiment meter_forecast, store {tracking.tracking_uri(settings)})"
    )
    console.print(f"registered model {result.model_name} version {result.version}")


def _f1_cell(scores: dict | None) -> str:
    if not scores:
        return "-"
    p, r = (f"{scores[k]:.2f}".removeprefix("0") for k in ("precision", "recall"))
    return f"{scores['f1']:.3f} ({p}/{r})"


def _forecast_cells(m: dict, prefix: str = "") -> list[str]:
    return [
        f"{m[prefix + 'mae']:.3f}",
        f"{m['skill_mae'] if not prefix else 0.0:.1%}",
        f"{m[prefix + 'cv_rmse']:.1f}",
        f"{m[prefix + 'nmbe']:.2f}",
        f"{m[prefix + 'mape']:.1f}",
    ]


def _print_forecasts(evaluations) -> None:
    if not evaluations:
        return
    table = Table(title="Forecast on the hold-out (kWh per machine-hour)")
    for column in ("model", "hours", "MAE", "skill on MAE", "CV(RMSE) %", "NMBE %", "MAPE %"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for e in evaluations:
        table.add_row(e.model.label, str(e.rows), *_forecast_cells(e.metrics))
    last = evaluations[-1]
    table.add_row("same hour last week", str(last.rows), *_forecast_cells(last.metrics, "baseline_"))
    console.print(table)


def _print_detectors(evaluations, baseline_share: float) -> None:
    labelled = [e for e in evaluations if e.details]
    for e in evaluations:
        if not e.details:
            console.print(
                f"{e.model.label}: no labelled anomalous hour in the hold-out (no F1), "
                f"flagged share {e.metrics['flagged_share']:.2%}"
            )
    if not labelled:
        return
    kinds = [k for k in labelled[0].details["baseline"] if k != "overall"]
    first = labelled[0]
    rows = [
        *[
            (e.model.label, e.details["model"], e.details["event_recall"], e.metrics["flagged_share"])
            for e in labelled
        ],
        (
            "robust z-score (MAD)",
            first.details["baseline"],
            first.details["baseline_event_recall"],
            baseline_share,
        ),
    ]
    table = Table(title="Anomaly detection on the hold-out: F1 (precision/recall) per machine-hour")
    for column in ("detector", "overall", *kinds, "hours flagged"):
        table.add_column(
            column, justify="left" if column == "detector" else "right", no_wrap=column == "detector"
        )
    for label, scores, _, share in rows:
        table.add_row(label, *[_f1_cell(scores.get(k)) for k in ("overall", *kinds)], f"{share:.1%}")
    console.print(table)
    events = Table(title="Event recall (share of events with a flagged hour)")
    for column in ("detector", "overall", *kinds):
        events.add_column(column, justify="left" if column == "detector" else "right")
    for label, _, recall, _ in rows:
        events.add_row(label, *[f"{recall[k]:.2f}" if k in recall else "-" for k in ("overall", *kinds)])
    console.print(events)


@ml_cli.command("evaluate")
@click.option("--run-date", default=None, help="Hold-out ends on this date (YYYY-MM-DD); default today.")
@click.option(
    "--lake-root", default=None, help="Lake to evaluate on; default lake_root of the configuration."
)
@click.option(
    "--truth",
    "truth_path",
    default=None,
    help="Anomaly labels CSV of that lake; default var/ground_truth/energy_anomalies.csv.",
)
@click.option(
    "--tracking-uri", default=None, help="MLflow store holding the models; default ml.tracking_uri."
)
@click.option(
    "--model",
    "model_uris",
    multiple=True,
    metavar="MODEL_URI",
    help="models:/<name>/<version> or models:/<name>@<alias>; repeatable. Default: both champions "
    "and the latest supervised and label-free detectors.",
)
@click.option(
    "--json",
    "json_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the figures to this file.",
)
def evaluate(
    run_date: str | None,
    lake_root: str | None,
    truth_path: str | None,
    tracking_uri: str | None,
    model_uris: tuple[str, ...],
    json_path: str | None,
) -> None:
    """Evaluate registered models on a lake's hold-out (the last ml.holdout_days days up
    to the run date) without retraining: forecast MAE, skill over the same hour last
    week, CV(RMSE), NMBE; anomaly precision/recall/F1 overall and per type and event
    recall, beside the robust z-score baseline.

    \b
    Examples:
      lakehouse ml evaluate --run-date 2026-12-06
      lakehouse ml evaluate --lake-root /data/other/lake --truth /data/other/energy_anomalies.csv \\
          --run-date 2026-12-06 --model models:/energy_anomaly_detector/2 --json figures.json
    """
    import json
    from pathlib import Path

    from lakehouse.engine import get_spark
    from lakehouse.ml.evaluation import evaluate_models

    settings = _settings(run_date, lake_root)
    if tracking_uri:
        settings.ml = settings.ml.model_copy(update={"tracking_uri": tracking_uri})
    try:
        with console.status("building features and evaluating"):
            report = evaluate_models(
                get_spark(settings, app_name="ml_evaluate"), settings, model_uris, events_path=truth_path
            )
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    events = "no labels" if report.holdout_events is None else f"{report.holdout_events} events"
    console.print(
        f"lake {report.lake_root}, hold-out {report.holdout_start[:10]} .. {report.holdout_end[:10]} "
        f"({report.holdout_rows} machine-hours, {events}); store {report.tracking_uri}"
    )
    _print_forecasts([e for e in report.evaluations if e.kind == "forecast"])
    _print_detectors([e for e in report.evaluations if e.kind == "anomaly"], report.baseline_flagged_share)
    timing = ", ".join(f"{e.model.label} {e.seconds:.1f} s" for e in report.evaluations)
    console.print(f"{report.seconds:.1f} s in all (per model: {timing})")
    if json_path:
        Path(json_path).write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
        console.print(f"figures written to {json_path}")
