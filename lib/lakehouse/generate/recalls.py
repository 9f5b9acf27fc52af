"""Regulatory recall notices, one JSON document a day as the agency's API returns it.

Grain of a notice: one per ``notice_id`` (its key); 0-2 notices a day, ~85 % about
our products (by CIP13), the rest about other laboratories' products.
"""

from __future__ import annotations

import datetime as dt
import json

from lakehouse.generate.formats import cip13_from_body
from lakehouse.generate.params import GenerationParams
from lakehouse.generate.referential import Referential
from lakehouse.generate.vocabulary import RECALL_REASONS, RECALL_SOURCE

SEVERITIES = ("I", "II", "III")
LOT_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def recalls_path(day: dt.date) -> str:
    return f"landing/source=regulatory/recalls/{day.isoformat()}/recalls_{day:%Y%m%d}.json"


def recall_document(params: GenerationParams, ref: Referential, day: dt.date) -> dict[str, object]:
    """The API page retrieved on ``day`` (deterministic ``retrieved_at``)."""
    rng = params.rng("recalls", day)
    ours = set(ref.products["cip13"])
    n = int(rng.choice(3, p=[0.45, 0.40, 0.15]))
    notices = []
    for i in range(n):
        if rng.random() < 0.85:
            cip13 = str(rng.choice(ref.products["cip13"].to_numpy()))
        else:
            cip13 = cip13_from_body(int(rng.integers(0, 10_000_000)))
            while cip13 in ours:  # another laboratory's product
                cip13 = cip13_from_body(int(rng.integers(0, 10_000_000)))
        letters = "".join(rng.choice(list(LOT_LETTERS), 2))
        notices.append(
            {
                "notice_id": f"RAP-{day:%Y%m%d}-{i + 1:02d}",
                "published_date": (day - dt.timedelta(days=int(rng.integers(0, 2)))).isoformat(),
                "cip13": cip13,
                "lot_number": f"{letters}{int(rng.integers(1000, 99999)):05d}",
                "severity": str(rng.choice(SEVERITIES, p=[0.15, 0.45, 0.40])),
                "reason": str(rng.choice(RECALL_REASONS)),
            }
        )
    retrieved = dt.datetime.combine(day, dt.time(6), tzinfo=dt.UTC) + dt.timedelta(
        seconds=int(rng.integers(0, 1800))
    )
    return {
        "source": RECALL_SOURCE,
        "retrieved_at": retrieved.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notices": notices,
    }


def recall_text(document: dict[str, object]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
