"""No secret in anything a job leaves behind: a real job (papermill, its own kernel) runs
a notebook that loads the configuration, prints and logs it, pseudonymises a value and
records an audit entry with secrets in its details; then every file it produced
(executed notebook, task log, run.json, the _system Delta tables) is scanned."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from lakehouse.governance import audit
from lakehouse.governance.erasure import contains_any, residual_files
from lakehouse.jobs import JobState, run_job

SECRETS = {
    "LAKEHOUSE_POSTGRES__PASSWORD": "fake-pg-Secret-4242",
    "LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY": "fake-pseudo-Key-0123456789",
    "REGULATORY_API_TOKEN": "fake-api-Token-9999",
}

NOTEBOOK_CELLS = [
    ("lake_root = ''", ["parameters"]),
    (
        """
        import logging, os
        from lakehouse.config import load_settings
        from lakehouse.governance import audit
        from lakehouse.governance.pseudonymise import pseudonym, pseudonymisation_key

        settings = load_settings(lake_root=lake_root)
        print(settings)
        print(settings.postgres, settings.governance)
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("secrets-check").warning("configuration: %s", settings.model_dump())
        """,
        [],
    ),
    ('print("pseudonym:", pseudonym("someone@example.com", pseudonymisation_key(settings)))', []),
    (
        """
        audit.record_event(
            lake_root, actor="notebook", action="config.change", target="postgres",
            details={"postgres_password": settings.postgres.password.get_secret_value(),
                     "api_token": os.environ["REGULATORY_API_TOKEN"], "host": settings.postgres.host},
        )
        settings
        """,
        [],
    ),
]


def _write_notebook(path: Path) -> None:
    cells = [
        nbformat.v4.new_code_cell(textwrap.dedent(source).strip(), metadata={"tags": tags})
        for source, tags in NOTEBOOK_CELLS
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


@pytest.mark.slow
def test_a_job_run_leaves_no_secret_in_any_file(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "conf" / "base").mkdir(parents=True)
    (project / "conf" / "base" / "lakehouse.yaml").write_text("profile: test\npostgres:\n  mode: external\n")
    (project / "notebooks").mkdir()
    _write_notebook(project / "notebooks" / "settings_check.ipynb")
    (project / "jobs.yaml").write_text(
        textwrap.dedent("""
        jobs:
          secrets_check:
            parameters:
              - {name: lake_root, default: ""}
            tasks:
              - task_key: settings_check
                notebook: notebooks/settings_check.ipynb
                parameters: {lake_root: "{{job.parameters.lake_root}}"}
        """).lstrip()
    )
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LAKEHOUSE_HOME", str(project))
    monkeypatch.chdir(project)
    lake_root = tmp_path / "lake"

    run = run_job(project / "jobs.yaml", "secrets_check", params={"lake_root": str(lake_root)}, quiet=True)

    assert run.state == JobState.SUCCESS, run.error
    executed = Path(run.run_dir) / "settings_check.ipynb"
    assert "pseudonym:" in executed.read_text()  # the notebook did use the key
    actions = audit.read_log(str(lake_root))["action"].to_pylist()
    assert actions == ["config.change", "job.run"]  # the hook recorded the run after the task
    produced = [f for f in (*Path(run.run_dir).rglob("*"), *lake_root.rglob("*")) if f.is_file()]
    assert {f.suffix for f in produced} >= {".ipynb", ".log", ".json", ".parquet"}
    assert any("job_runs" in str(f) for f in produced) and any("audit_log" in str(f) for f in produced)
    leaks = residual_files(tmp_path, set(SECRETS.values()))  # also the project folder and var/
    assert leaks == []


def test_the_scanner_finds_a_secret_in_text_and_in_compressed_parquet(tmp_path):
    # Guards the test above: a scanner that found nothing by construction would prove nothing.
    import pyarrow as pa
    import pyarrow.parquet as pq

    secret = SECRETS["REGULATORY_API_TOKEN"]
    (tmp_path / "run.log").write_text(f"token={secret}\n")
    pq.write_table(pa.table({"v": [secret] * 1000}), tmp_path / "t.parquet", compression="zstd")
    assert contains_any(tmp_path / "t.parquet", {secret})
    assert residual_files(tmp_path, {secret}) == [str(tmp_path / "run.log"), str(tmp_path / "t.parquet")]
