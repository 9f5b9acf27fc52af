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
