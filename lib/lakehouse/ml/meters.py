"""Consumption forecast of one real meter from its hourly CSV (``lakehouse ml meter train``).

Same protocol as the synthetic forecast (``docs/ml.md``): the kWh of an hour from
what is known 24 hours before, a time-based hold-out (the last ``holdout_days`` local
days), the seasonal naive baseline (the same hour a week before), MLflow logging and
a registered model per meter (``meter_forecast_<slug>``). Pure pandas, no Spark.

The CSV (``read_meter_csv``): a header with ``timestamp`` and ``kWh`` (any case, any
other columns ignored), ``,`` or ``;`` separated (``;`` files may use a decimal
comma), one row per hour, the kWh consumed during the hour that starts at the
timestamp. Timestamps are ISO 8601, either with an offset (``2026-03-29T01:00:00+01:00``,
``...Z``) or naive local wall-clock times of ``timezone``. Rows are keyed by their UTC
hour:

- spring forward: the naive local hour 02:00 does not exist; the hours around it are
  consecutive in UTC (no fake gap), a row at the missing local time is a bad row;
- fall back: the naive local hour 02:00 appears twice; the first row in the file is
  summer time, the second winter time (a lone 02:00 is taken as the first one: write
  offsets to be exact);
- the same UTC hour twice: identical rows count as ``duplicate_rows`` and are kept once;
  different kWh are an error naming both lines.

Missing hours (absent rows, empty or ``NaN`` kWh) stay in the complete hourly UTC
range as NaN: neither trained on nor evaluated, and lags that point at them are NaN.
Bad rows (unparseable timestamp or kWh, negative or infinite kWh, a time not at the
start of an hour, a local time that does not exist) stop the read with the file and
line, or with ``skip_bad_rows`` are skipped and counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import numpy as np
import pandas as pd

from lakehouse.config import Settings
from lakehouse.ml import tracking
from lakehouse.ml.metrics import forecast_metrics, skill
from lakehouse.ml.model_code import code_path

DEFAULT_TIMEZONE = "Europe/Paris"
EXPERIMENT = "meter_forecast"
MODEL_PREFIX = "meter_forecast_"
MODEL_DEFINITION = "meter_forecast"  # ml/models/meter_forecast.py
TRAIN_DAYS = 14  # days of history before the hold-out: the first week only feeds the lags
LAG_HOURS = (24, 48, 168)
TARGET = "kwh"
CALENDAR_FEATURES = ("hour_of_day", "day_of_week", "is_weekend", "is_holiday", "is_holiday_day_ago")
FEATURES = (
    *CALENDAR_FEATURES,
    *(f"kwh_lag_{h}" for h in LAG_HOURS),
    "kwh_roll24_mean_day_ago",  # hours t-47..t-24: the day before, known a day ahead
    "kwh_roll24_max_day_ago",
    "kwh_roll168_mean_day_ago",  # hours t-191..t-24: the week before
)
MISSING_TEXT = {"", "nan", "na", "n/a", "null"}
THREADS = 1  # one OpenMP thread: on a shared 2-core machine two threads fit 10x slower


class MeterDataError(ValueError):
    """The CSV cannot be used as it is; the message names the file and the line."""


@dataclass(frozen=True)
class BadRow:
    line: int  # 1-based line of the file (the header is line 1)
    reason: str

    def describe(self, path: Path) -> str:
        return f"{path}, line {self.line}: {self.reason}"


@dataclass(frozen=True)
class MeterSeries:
    """A meter's readings on a complete hourly UTC range (``hour_ts`` UTC-naive, ``kwh``
    NaN where missing), from its first to its last reading."""

    path: Path
    timezone: str
    hourly: pd.DataFrame
    rows: int  # data rows of the file (blank lines aside)
    bad_rows: tuple[BadRow, ...]  # skipped (only with skip_bad_rows)
    duplicate_rows: int  # identical repeats of an hour, kept once

    @property
    def hours(self) -> int:
        return len(self.hourly)

    @property
    def missing_hours(self) -> int:
        return int(self.hourly[TARGET].isna().sum())

    @property
    def days(self) -> float:
        return self.hours / 24


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MeterDataError(f"unknown time zone {timezone!r} (e.g. Europe/Paris, UTC)") from exc


def _parse_kwh(text: str, decimal_comma: bool) -> float | str:
    """The value, NaN for a missing one, or the reason it is bad."""
    text = text.strip()
    if text.lower() in MISSING_TEXT:
        return math.nan
    try:
        value = float(text.replace(",", ".") if decimal_comma else text)
    except ValueError:
        return f"kWh {text!r} is not a number"
    if math.isnan(value):
        return math.nan
    if math.isinf(value):
        return f"kWh {text!r} is not a finite number"
    if value < 0:
        return f"kWh {text!r} is negative"
    return value


def _parse_timestamp(text: str) -> dt.datetime | str:
    """The timestamp (aware or naive), or the reason it is bad."""
    text = text.strip()
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return f"timestamp {text!r} is not an ISO 8601 date-time (e.g. 2026-03-29T01:00:00+01:00)"
    if (stamp.minute, stamp.second, stamp.microsecond) != (0, 0, 0):
        return f"timestamp {text!r} is not the start of an hour"
    return stamp


def _read_rows(handle, path: Path) -> tuple[int, list[int], list[dt.datetime], list[float], list[BadRow]]:
    """Data rows, and the line, timestamp and kWh of each readable one; bad rows."""
    first_line = handle.readline()
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    handle.seek(0)
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    names = [name.strip().lower() for name in header or []]
    if "timestamp" not in names or "kwh" not in names:
        raise MeterDataError(
            f"{path}, line 1: expected a header with columns timestamp and kWh, found {header or 'nothing'}"
        )
    ts_col, kwh_col = names.index("timestamp"), names.index("kwh")
    lines: list[int] = []
    stamps: list[dt.datetime] = []
    values: list[float] = []
    bad: list[BadRow] = []
    rows = 0
    for record in reader:
        if not any(field.strip() for field in record):
            continue
        rows += 1
        line = reader.line_num
        if len(record) <= max(ts_col, kwh_col):
            bad.append(BadRow(line, f"{len(record)} fields, expected at least {max(ts_col, kwh_col) + 1}"))
            continue
        stamp = _parse_timestamp(record[ts_col])
        value = _parse_kwh(record[kwh_col], decimal_comma=delimiter == ";")
        if isinstance(stamp, str) or isinstance(value, str):
            bad.append(BadRow(line, stamp if isinstance(stamp, str) else str(value)))
            continue
        lines.append(line)
        stamps.append(stamp)
        values.append(value)
    return rows, lines, stamps, values, bad


def _to_utc(naive: list[dt.datetime], zone: ZoneInfo) -> pd.DatetimeIndex:
    """Local wall-clock times to UTC-naive; a time that does not exist gives NaT. An
    ambiguous time (fall back) is summer time at its first occurrence, winter time at
    the next ones."""
    local = pd.DatetimeIndex(naive)
    first = ~local.duplicated(keep="first")
    aware = local.tz_localize(zone, ambiguous=first, nonexistent="NaT")
    return aware.tz_convert("UTC").tz_localize(None)


def read_meter_csv(
    path: str | Path, *, timezone: str = DEFAULT_TIMEZONE, skip_bad_rows: bool = False
) -> MeterSeries:
    """Read an hourly meter CSV into a complete hourly UTC series (module docstring)."""
    path = Path(path)
    zone = _zone(timezone)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows, lines, stamps, values, bad = _read_rows(handle, path)
    except OSError as exc:
        raise MeterDataError(f"{path}: cannot read the file ({exc.strerror})") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MeterDataError(f"{path}: not a UTF-8 CSV text file ({exc})") from exc

    utc = np.empty(len(stamps), dtype="datetime64[ns]")
    naive = [i for i, s in enumerate(stamps) if s.tzinfo is None]
    aware = [i for i, s in enumerate(stamps) if s.tzinfo is not None]
    if aware:
        utc[aware] = pd.DatetimeIndex([stamps[i] for i in aware], tz="UTC").tz_localize(None).to_numpy()
    if naive:
        local = _to_utc([stamps[i] for i in naive], zone)
        utc[naive] = local.to_numpy()
        for i in np.flatnonzero(local.isna()):
            text = stamps[naive[i]].isoformat(sep=" ")
            bad.append(
                BadRow(lines[naive[i]], f"local time {text} does not exist in {timezone} (clocks go forward)")
            )
    frame = pd.DataFrame({"line": lines, "hour_ts": utc, TARGET: values}).dropna(subset=["hour_ts"])

    bad.sort(key=lambda row: row.line)
    if bad and not skip_bad_rows:
        more = f" (and {len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
        raise MeterDataError(f"{bad[0].describe(path)}{more}; --skip-bad-rows skips and counts them")
    if frame.empty:
        raise MeterDataError(f"{path}: no usable reading ({rows} data rows, {len(bad)} bad)")

    frame, duplicates = _drop_identical_duplicates(frame, path)
    grid = pd.date_range(frame["hour_ts"].min(), frame["hour_ts"].max(), freq="h")
    off_grid = frame.loc[~frame["hour_ts"].isin(grid), "line"]
    if not off_grid.empty:
        raise MeterDataError(
            f"{path}, line {off_grid.iloc[0]}: not a whole number of hours after the first reading"
        )
    readings = frame.set_index("hour_ts")[TARGET]
    hourly = pd.DataFrame({"hour_ts": grid, TARGET: readings.reindex(grid).to_numpy(float)})
    return MeterSeries(path, timezone, hourly, rows, tuple(bad), duplicates)


def _drop_identical_duplicates(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, int]:
    repeated = frame[frame["hour_ts"].duplicated(keep=False)]
    for hour, group in repeated.groupby("hour_ts"):
        if group[TARGET].nunique(dropna=False) > 1:
            lines = " and ".join(str(line) for line in group["line"])
            kwh = ", ".join(f"{value:g}" for value in group[TARGET])
            raise MeterDataError(
                f"{path}, lines {lines}: the same UTC hour {hour:%Y-%m-%d %H:%M}Z twice with different kWh ({kwh})"
            )
    kept = frame[~frame["hour_ts"].duplicated(keep="first")]
    return kept.sort_values("hour_ts").reset_index(drop=True), len(frame) - len(kept)


def meter_features(hourly: pd.DataFrame, timezone: str = DEFAULT_TIMEZONE) -> pd.DataFrame:
    """One row per hour of a complete hourly UTC range (``hour_ts``, ``kwh``): the local
    wall-clock time ``local_ts``, the local calendar (hour of day, day of week with
    Monday 0, and 0/1 flags: weekend, French public holiday today and 24 hours before;
    all features are float64, what the registered model takes), and what is
    known 24 hours before: kWh lags of 24/48/168 hours and the mean/max of the 24 hours
    ending 24 hours before (at least 12 of them known) and the mean of the week ending
    24 hours before (at least 84 known). Lags are positions on the complete range, so
    a missing hour gives NaN, never a neighbour's value."""
    frame = hourly.loc[:, ["hour_ts", TARGET]].sort_values("hour_ts").reset_index(drop=True)
    steps = frame["hour_ts"].diff().dropna()
    if not (steps == pd.Timedelta(hours=1)).all():
        raise ValueError("meter_features needs a complete hourly range (read_meter_csv gives one)")
    local = frame["hour_ts"].dt.tz_localize("UTC").dt.tz_convert(_zone(timezone))
    day_ago = local - pd.Timedelta(hours=24)
    years = range(local.dt.year.min() - 1, local.dt.year.max() + 1)
    public = holidays.France(years=years)
    kwh = frame[TARGET].astype(float)
    known = kwh.shift(24)
    frame["local_ts"] = local.dt.tz_localize(None)
    # every feature is float64 (flags 0/1): the registered model's signature is all doubles
    frame["hour_of_day"] = local.dt.hour.astype("float64")
    frame["day_of_week"] = local.dt.dayofweek.astype("float64")
    frame["is_weekend"] = (frame["day_of_week"] >= 5).astype("float64")
    frame["is_holiday"] = np.array([day in public for day in local.dt.date], dtype="float64")
    frame["is_holiday_day_ago"] = np.array([day in public for day in day_ago.dt.date], dtype="float64")
    for hours in LAG_HOURS:
        frame[f"kwh_lag_{hours}"] = kwh.shift(hours)
    frame["kwh_roll24_mean_day_ago"] = known.rolling(24, min_periods=12).mean()
    frame["kwh_roll24_max_day_ago"] = known.rolling(24, min_periods=12).max()
    frame["kwh_roll168_mean_day_ago"] = known.rolling(168, min_periods=84).mean()
    return frame


def model_input(features: pd.DataFrame) -> pd.DataFrame:
    """The columns the registered model takes, all float64 (its signature)."""
    return features.loc[:, list(FEATURES)].astype("float64").reset_index(drop=True)


def seasonal_naive(features: pd.DataFrame) -> pd.Series:
    """The baseline: the same hour a week (168 hours) before."""
    return features["kwh_lag_168"]


def evaluate(actual, predicted, naive) -> dict[str, float]:
    """The model's ``forecast_metrics``, the baseline's as ``baseline_*`` and
    ``skill_mae`` = 1 - MAE / MAE(baseline)."""
    ours = forecast_metrics(actual, predicted)
    theirs = forecast_metrics(actual, naive)
    return {
        **ours,
        **{f"baseline_{key}": value for key, value in theirs.items()},
        "skill_mae": skill(ours["mae"], theirs["mae"]),
    }


def slug(name: str) -> str:
    """``Compteur Atelier B`` -> ``compteur_atelier_b`` (ASCII letters, digits, _)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_") or "meter"


def min_leaf(train_rows: int) -> int:
    """Smallest leaf of the trees: 1 % of the training hours, between 5 and 20. A few
    weeks of one meter give a few hundred hours, too few for the synthetic models' 20
    (a leaf could not isolate one hour of one weekday); a year gives 20."""
    return max(5, min(20, train_rows // 100))


def holdout_start(features: pd.DataFrame, timezone: str, holdout_days: int) -> pd.Timestamp:
    """UTC-naive start of the hold-out: local midnight ``holdout_days - 1`` days before
    the local day of the last hour."""
    last_day = features["local_ts"].iloc[-1].normalize()
    start = (last_day - pd.Timedelta(days=holdout_days - 1)).tz_localize(
        _zone(timezone), ambiguous=True, nonexistent="shift_forward"
    )
    return start.tz_convert("UTC").tz_localize(None)


@dataclass(frozen=True)
class MeterResult:
    meter: str
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    hours: int  # the complete hourly UTC range
    missing_hours: int
    bad_rows: int  # skipped
    duplicate_rows: int
    train_rows: int  # hours before the hold-out with a reading
    holdout_hours: int  # hours of the hold-out range
    evaluated_hours: int  # hold-out hours with a reading and one a week before
    holdout_start: pd.Timestamp  # UTC-naive
    holdout_start_local: pd.Timestamp  # naive local wall clock
    predictions: pd.DataFrame  # the evaluated hours: hour_ts, local_ts, kwh, predicted_kwh, seasonal_naive
    seconds: float


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("mlflow", "scikit-learn", "pandas", "numpy", "skops", "threadpoolctl")
    return [f"{package}=={version(package)}" for package in packages]


def _plot(predictions: pd.DataFrame, meter: str, timezone: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    x = predictions["local_ts"]
    ax.plot(x, predictions[TARGET], label="actual", lw=1)
    ax.plot(x, predictions["predicted_kwh"], label="model", lw=1)
    ax.plot(x, predictions["seasonal_naive"], label="same hour last week", lw=1, ls=":")
    ax.set(title=f"Hold-out, meter {meter}", ylabel="kWh per hour", xlabel=f"local time ({timezone})")
    ax.legend()
    fig.autofmt_xdate()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def train_meter_forecast(
    series: MeterSeries,
    settings: Settings,
    *,
    holdout_days: int = 7,
    name: str | None = None,
    max_iter: int = 300,
) -> MeterResult:
    """Fit a ``HistGradientBoostingRegressor`` on the hours before the hold-out, evaluate
    it against the seasonal naive forecast on the hold-out hours that have a reading and
    one a week before, log the run to the ``meter_forecast`` experiment and register the
    model as ``meter_forecast_<slug of name>`` (name: the CSV's file name by default)."""
    started = time.perf_counter()
    if holdout_days < 1:
        raise MeterDataError(f"--holdout-days must be at least 1, not {holdout_days}")
    needed = holdout_days + TRAIN_DAYS
    if series.days < needed:
        first, last = series.hourly["hour_ts"].iloc[[0, -1]]
        raise MeterDataError(
            f"{series.path}: {series.days:.1f} days of readings ({first:%Y-%m-%d %H:%M}Z to "
            f"{last:%Y-%m-%d %H:%M}Z); a {holdout_days}-day hold-out needs at least {needed} days "
            f"({holdout_days} to evaluate + {TRAIN_DAYS} to train, the first week of which only feeds the lags)"
        )
    import mlflow
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    meter = name or series.path.stem
    model_name = MODEL_PREFIX + slug(meter)
    features = meter_features(series.hourly, series.timezone)
    cutoff = holdout_start(features, series.timezone, holdout_days)
    in_holdout = features["hour_ts"] >= cutoff
    train = features[~in_holdout & features[TARGET].notna()]
    holdout = features[in_holdout]
    evaluated = holdout[holdout[TARGET].notna() & seasonal_naive(holdout).notna()].reset_index(drop=True)
    if evaluated.empty:
        raise MeterDataError(f"{series.path}: no hold-out hour has a reading and one a week before")

    min_samples_leaf = min_leaf(len(train))
    estimator = HistGradientBoostingRegressor(
        max_iter=max_iter,
        learning_rate=0.05,
        max_leaf_nodes=31,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=1.0,
        early_stopping=False,  # no random validation split: same data + seed, same model
        random_state=settings.ml.seed,
    )
    with threadpool_limits(THREADS):
        estimator.fit(model_input(train), train[TARGET].to_numpy(float))
        predicted = np.clip(estimator.predict(model_input(evaluated)), 0.0, None)
    naive = seasonal_naive(evaluated).to_numpy(float)
    metrics = evaluate(evaluated[TARGET].to_numpy(float), predicted, naive)
    predictions = evaluated[["hour_ts", "local_ts", TARGET]].assign(
        predicted_kwh=predicted, seasonal_naive=naive
    )
    cutoff_local = features.loc[in_holdout, "local_ts"].iloc[0]

    tracking.configure(settings)
    example = model_input(train).head(24)
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(settings, EXPERIMENT), run_name=slug(meter)
    ) as run:
        mlflow.set_tags({"meter": meter, "source_file": series.path.name})
        mlflow.log_params(
            {
                "meter": meter,
                "source_file": series.path.name,
                "timezone": series.timezone,
                "estimator": "HistGradientBoostingRegressor",
                "max_iter": max_iter,
                "min_samples_leaf": min_samples_leaf,
                "seed": settings.ml.seed,
                "holdout_days": holdout_days,
                "holdout_start": cutoff.isoformat(),
                "holdout_start_local": cutoff_local.isoformat(),
                "first_hour": series.hourly["hour_ts"].iloc[0].isoformat(),
                "last_hour": series.hourly["hour_ts"].iloc[-1].isoformat(),
                "hours": series.hours,
                "missing_hours": series.missing_hours,
                "bad_rows_skipped": len(series.bad_rows),
                "duplicate_rows": series.duplicate_rows,
                "train_rows": len(train),
                "holdout_hours": len(holdout),
                "evaluated_hours": len(evaluated),
                "baseline": "seasonal naive: the same hour 168 hours before",
                "features": ",".join(FEATURES),
            }
        )
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as folder:
            mlflow.log_artifact(
                str(_plot(predictions, meter, series.timezone, Path(folder) / "meter_holdout.png")),
                "evaluation",
            )
            estimator_path = Path(folder) / "estimator.skops"
            skops.io.dump(estimator, estimator_path)
            with threadpool_limits(THREADS):
                example_output = pd.Series(
                    np.clip(estimator.predict(example), 0.0, None), name="predicted_kwh"
                )
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code_path(MODEL_DEFINITION, settings.project_root)),
                artifacts={"estimator": str(estimator_path)},
                signature=infer_signature(example, example_output),
                input_example=example.head(5),
                registered_model_name=model_name,
                pip_requirements=_requirements(),
            )
    return MeterResult(
        meter=meter,
        model_name=model_name,
        version=str(info.registered_model_version),
        run_id=run.info.run_id,
        metrics=metrics,
        hours=series.hours,
        missing_hours=series.missing_hours,
        bad_rows=len(series.bad_rows),
        duplicate_rows=series.duplicate_rows,
        train_rows=len(train),
        holdout_hours=len(holdout),
        evaluated_hours=len(evaluated),
        holdout_start=cutoff,
        holdout_start_local=cutoff_local,
        predictions=predictions,
        seconds=time.perf_counter() - started,
    )
