"""The medallion pipeline: its graph, its layers, and the state kept under its former name."""

from __future__ import annotations

import pytest

from lakehouse.lake import Lake
from lakehouse.medallion import PIPELINE, adopt_former_state, layer_datasets, medallion_graph


def test_the_graph_holds_both_domains_under_one_neutral_name():
    graph = medallion_graph()
    assert graph.name == PIPELINE == "medallion"
    assert {
        "fact_ventes",
        "fact_consommation_energie",
        "silver_order_lines",
        "silver_iot_readings_hourly",
    } <= set(graph.datasets)


def test_layer_datasets_refuses_an_unknown_layer_and_an_empty_folder():
    graph = medallion_graph()
    assert layer_datasets(graph, "gold", under="domain=energy")[0].startswith(("dim_", "fact_", "kpi_"))
    with pytest.raises(ValueError, match="unknown layer 'platinum'"):
        layer_datasets(graph, "platinum")
    with pytest.raises(
        ValueError, match="no dataset of pipeline 'medallion' is stored under 'gold/domain=x/'"
    ):
        layer_datasets(graph, "gold", under="domain=x")


def test_state_under_the_former_name_is_adopted_once_and_never_overwrites(tmp_path):
    lake = Lake(str(tmp_path))
    offsets = tmp_path / "_system/checkpoints/pharma/bronze_order_lines/offsets.json"
    offsets.parent.mkdir(parents=True)
    offsets.write_text('{"files": ["a.csv"]}')
    (tmp_path / "_system/incremental/pharma").mkdir(parents=True)
    (tmp_path / "_system/incremental/pharma/fact_ventes.json").write_text("{}")
    (tmp_path / "_system/private/medallion").mkdir(parents=True)  # already there: left as is
    (tmp_path / "_system/private/pharma").mkdir(parents=True)

    moved = adopt_former_state(lake)

    assert moved == [lake.system("checkpoints/medallion"), lake.system("incremental/medallion")]
    adopted = tmp_path / "_system/checkpoints/medallion/bronze_order_lines/offsets.json"
    assert adopted.read_text() == '{"files": ["a.csv"]}' and not offsets.exists()
    assert (tmp_path / "_system/incremental/medallion/fact_ventes.json").exists()
    assert (tmp_path / "_system/private/pharma").exists()  # never merged into existing state
    assert adopt_former_state(lake) == []


@pytest.mark.xdist_group("s3")
def test_state_is_adopted_on_an_object_store_where_folders_cannot_be_renamed(
    monkeypatch, aws_env, s3_client, bucket
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    for key in ("a/offsets.json", "a/b/state.json"):
        s3_client.put_object(Bucket=bucket, Key=f"lake/_system/checkpoints/pharma/{key}", Body=key.encode())

    moved = adopt_former_state(Lake(f"s3://{bucket}/lake"))

    assert moved == [f"s3://{bucket}/lake/_system/checkpoints/medallion"]
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="lake/_system/checkpoints/")["Contents"]
    stored = {o["Key"]: s3_client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}
    assert {k: v for k, v in stored.items() if not k.endswith("/")} == {
        "lake/_system/checkpoints/medallion/a/offsets.json": b"a/offsets.json",
        "lake/_system/checkpoints/medallion/a/b/state.json": b"a/b/state.json",
    }
