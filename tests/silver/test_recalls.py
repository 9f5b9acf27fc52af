import datetime as dt

from lakehouse.silver.recalls import clean_recalls

BRONZE_SCHEMA = (
    "notice_id string, published_date string, cip13 string, lot_number string, severity string, "
    "reason string, source string, retrieved_at timestamp, _corrupt_record string, _rescued_data string, "
    "_source_file string, _ingested_at timestamp"
)
PRODUCTS_SCHEMA = "product_id string, cip13 string, name string"
T1, T2 = dt.datetime(2026, 11, 2, 6), dt.datetime(2026, 11, 3, 6)


def _notice(notice_id, cip13, *, published="2026-11-02", rescued=None, at=T1, file="r1", corrupt=None):
    return (notice_id, published, cip13, "AB12345", "II", "purity", "agency", at, corrupt, rescued, file, at)


def test_recalls_match_our_products_by_cip13_or_name_and_keep_the_latest_copy(spark):
    bronze = spark.createDataFrame(
        [
            _notice("R1", "3400930000001"),  # ours, by CIP13
            _notice("R1", "3400930000001", at=T2, file="r2", published="2026-11-03"),  # re-sent: wins
            _notice("R2", "3400930999999"),  # another laboratory's product
            _notice(
                "R3", None, rescued='{"product_description": "DOLIPRANE 500 mg tablets"}'
            ),  # API, by name
            _notice(
                "R4", None, rescued='{"product_description": "Doliprane and Ibuprofene kit"}'
            ),  # ambiguous
            _notice(None, None, corrupt='{"notice_id": "R5", '),  # corrupt record
            _notice("R6", "3400930000002", published="2026-13-45"),  # impossible date
        ],
        BRONZE_SCHEMA,
    )
    products = spark.createDataFrame(
        [("P1", "3400930000001", "Doliprane"), ("P2", "3400930000002", "Ibuprofene")], PRODUCTS_SCHEMA
    )
    kept, quarantine = clean_recalls(bronze, products)
    rows = sorted(
        (r.notice_id, r.published_date, r.product_id, r.match_method, r.is_our_product)
        for r in kept.collect()
    )
    assert rows == [
        ("R1", dt.date(2026, 11, 3), "P1", "cip13", True),
        ("R2", dt.date(2026, 11, 2), None, None, False),
        ("R3", dt.date(2026, 11, 2), "P1", "name", True),
        ("R4", dt.date(2026, 11, 2), None, None, False),  # two names match: not guessed
    ]
    reasons = sorted((r.notice_id or "", sorted(r._rejection_reasons)) for r in quarantine.collect())
    assert reasons == [
        ("", ["notice_id_present", "well_formed_record"]),
        ("R1", ["latest_version_of_notice"]),
        ("R6", ["valid_published_date"]),
    ]


def test_a_run_reads_the_notices_dropped_by_its_date_and_skips_unread_when_nothing_changed(spark, lake):
    """silver_recalls reads the notices dropped up to the run date. With no drop after
    it and none undated (every daily run), its plan does not depend on the date: the
    next day with nothing new skips it unread. A later drop waits for its date."""
    from lakehouse import pipelines as dp
    from lakehouse.lake import read_delta, write_delta

    graph = dp.load_graph("recalls_test", ["lakehouse.bronze.tables", "lakehouse.silver.pharma_tables"])

    def runner(day: int):
        return dp.PipelineRunner(spark, graph, lake, parameters={"run_date": dt.date(2026, 11, day)})

    def drop(notice_id: str, day: str) -> None:
        row = (*_notice(notice_id, "3400930000001"), "2026", "11", day)
        frame = spark.createDataFrame([row], f"{BRONZE_SCHEMA}, year string, month string, day string")
        write_delta(
            frame, runner(2).path("bronze_recalls"), mode="append", partition_by=("year", "month", "day")
        )

    def refresh(day: int):
        run = runner(day).run(refresh=["silver_recalls"], include_upstreams=False)
        assert run.status == "COMPLETED", run.error
        notices = sorted(r.notice_id for r in read_delta(spark, runner(day).path("silver_recalls")).collect())
        return run.event("silver_recalls"), notices

    products = spark.createDataFrame([("P1", "3400930000001", "Doliprane")], PRODUCTS_SCHEMA)
    write_delta(products, runner(2).path("silver_products"))
    drop("R1", "01")
    drop("R2", "02")
    assert refresh(2)[1] == ["R1", "R2"]
    event, notices = refresh(3)
    assert (event.status, event.details) == (
        "SKIPPED",
        "inputs and definition unchanged since the last refresh",
    )

    drop("R5", "05")
    assert refresh(3)[1] == ["R1", "R2"]  # dropped on the 5th: not yet
    assert refresh(5)[1] == ["R1", "R2", "R5"]
