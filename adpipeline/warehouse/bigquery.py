"""BigQuery warehouse (production): SQL runs natively; rows arrive through load jobs into staging tables.

Reads (``query``, ``read_table``) go through pandas-gbq's ``read_gbq`` on this warehouse's client. Row writes do not
use ``to_gbq``: rows are validated Pydantic models, and newline-delimited JSON with the schema derived from the model
keeps REPEATED and REQUIRED columns and NULL integers exactly, where a DataFrame round trip (``to_gbq``'s Parquet)
would turn ``list[str]`` and ``int | None`` columns into object/float columns first. The load lands in a staging
table that one MERGE applies, so a write is one load job plus one query job whatever the row count.

Credentials: the Airflow connection ``gcp_conn_id`` through the Google provider's hook, else Application Default
Credentials (:mod:`adpipeline.google_auth`).

Against the local emulator (tests), set ``BIGQUERY_EMULATOR_HOST`` (e.g. ``http://127.0.0.1:9050``): the client
then talks to that endpoint with anonymous credentials. Everything here also holds on real BigQuery; where the
emulator forced a choice, the choice is one BigQuery accepts too:

* rows are loaded as newline-delimited JSON through a *resumable* upload (``size=None``); the emulator rejected
  multipart uploads;
* results are read over REST (``create_bqstorage_client=False``), never the Storage Read API;
* tables are written with DDL (``CREATE TABLE ... AS``), never a query job's ``destination=``, which the emulator
  ignores.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import io
import logging
import os
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from adpipeline.google_auth import DEFAULT_GCP_CONN_ID, google_credentials
from adpipeline.tables import BUCKET_KEYS, Row, TableSpec
from adpipeline.warehouse import schema
from adpipeline.warehouse.base import Warehouse, missing_columns

if TYPE_CHECKING:
    from google.cloud import bigquery

log = logging.getLogger("adpipeline")

EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
KEYS_LABEL = "adp_bucket_keys"
"""Table label set once a table's bucket-reference columns hold keys (new, or migrated): no migration query after."""
_STAGE_TTL = dt.timedelta(hours=6)  # a staging table left behind by a killed task expires by itself


def make_client(
    project: str, location: str | None = None, gcp_conn_id: str | None = DEFAULT_GCP_CONN_ID
) -> bigquery.Client:
    """A BigQuery client with credentials from the Airflow connection ``gcp_conn_id`` when one can be read, else
    Application Default Credentials (:mod:`adpipeline.google_auth`).

    ``BIGQUERY_EMULATOR_HOST`` points the client at the emulator; without a connection it then sends anonymous
    credentials (the emulator checks none)."""
    from google.cloud import bigquery

    found = google_credentials(gcp_conn_id)
    credentials = found.credentials
    options = None
    host = os.environ.get(EMULATOR_ENV)
    if host:
        if "://" not in host:
            host = f"http://{host}"
        options = {"api_endpoint": host}
        if credentials is None:
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
    log.debug("BigQuery client for %s with credentials from %s", project, found.source)
    return bigquery.Client(project=project, location=location, credentials=credentials, client_options=options)


def _scalar_type(value: Any) -> str:
    """BigQuery type of one Python value (``bool`` before ``int``, ``datetime`` before ``date``)."""
    import numpy as np

    if isinstance(value, bool | np.bool_):
        return "BOOL"
    if isinstance(value, int | np.integer):
        return "INT64"
    if isinstance(value, float | np.floating):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, dt.datetime | pd.Timestamp):
        return "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    if isinstance(value, str):
        return "STRING"
    raise TypeError(f"no BigQuery parameter type for {type(value).__name__}: {value!r}")


def _plain(value: Any) -> Any:
    """numpy/pandas scalars to the Python values the client serialises."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def query_parameters(params: Mapping[str, Any] | None) -> list[Any]:
    """Typed query parameters inferred from Python values; lists/tuples become ARRAY parameters.

    ``None`` is sent as a NULL STRING (BigQuery needs a type; pass a typed value where the type matters).
    """
    from google.cloud import bigquery

    result: list[Any] = []
    for name, value in (params or {}).items():
        if isinstance(value, list | tuple | set | frozenset):
            items = [_plain(v) for v in value]
            known = [v for v in items if v is not None]
            kind = _scalar_type(known[0]) if known else "STRING"
            if kind == "INT64" and any(isinstance(v, float) for v in known):
                kind = "FLOAT64"
            result.append(bigquery.ArrayQueryParameter(name, kind, items))
        elif value is None:
            result.append(bigquery.ScalarQueryParameter(name, "STRING", None))
        else:
            value = _plain(value)
            result.append(bigquery.ScalarQueryParameter(name, _scalar_type(value), value))
    return result


def schema_fields(model: type[Row]) -> list[bigquery.SchemaField]:
    """The model's BigQuery schema (REQUIRED / NULLABLE / REPEATED)."""

    return [_field(c.name, c.bq_type, c.mode, c.description) for c in schema.columns(model)]


def _field(name: str, bq_type: str, mode: str, description: str | None, fields: Any = ()) -> bigquery.SchemaField:
    from google.cloud import bigquery

    if description:
        return bigquery.SchemaField(name, bq_type, mode=mode, fields=fields, description=description)
    return bigquery.SchemaField(name, bq_type, mode=mode, fields=fields)


class BigQueryWarehouse(Warehouse):
    """Tables in one BigQuery dataset, created (in ``location``) on first use if missing. Credentials: the Airflow
    connection ``gcp_conn_id`` when one can be read, else ADC (see :func:`make_client`)."""

    name = "bigquery"
    partitioned = True

    def __init__(
        self,
        project: str,
        dataset: str,
        location: str = "US",
        client: bigquery.Client | None = None,
        gcp_conn_id: str | None = DEFAULT_GCP_CONN_ID,
    ) -> None:
        self.project = project
        self.dataset = dataset
        self.location = location
        self.gcp_conn_id = gcp_conn_id
        self._client = client
        self._dataset_ready = False
        self._existing: set[str] | None = None  # table names known to exist (listed once, then kept up to date)
        self.jobs: collections.Counter[str] = collections.Counter()
        """BigQuery jobs this instance started, by kind (query statement type, or ``load``): each is billed/quota'd."""

    # --- connection -----------------------------------------------------------------------------
    @property
    def client(self) -> bigquery.Client:
        if self._client is None:
            self._client = make_client(self.project, self.location, self.gcp_conn_id)
        return self._client

    @property
    def dataset_id(self) -> str:
        return f"{self.project}.{self.dataset}"

    def ensure_dataset(self) -> None:
        """Create the dataset if it does not exist (once per instance). Looks first, so a role that may use but not
        create datasets works when the dataset is already there."""
        if self._dataset_ready:
            return
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        try:
            self.client.get_dataset(self.dataset_id)
        except NotFound:
            ds = bigquery.Dataset(self.dataset_id)
            ds.location = self.location
            self.client.create_dataset(ds, exists_ok=True)
        self._dataset_ready = True

    def ensure_tables(self, names: Sequence[str] | None = None) -> None:
        """Create the missing tables (partitioned and clustered per their spec). Lists the dataset once per
        instance (an API call, not a job) instead of a ``CREATE TABLE IF NOT EXISTS`` job per table per call."""
        from adpipeline.tables import TABLES

        self.ensure_dataset()
        if self._existing is None:
            self._existing = {t.table_id for t in self.client.list_tables(self.dataset_id)}
        checked: set[str] = self.__dict__.setdefault("_columns_checked", set())
        for name in names or list(TABLES):
            if name not in self._existing:
                self._run(self.create_table_sql(TABLES[name]), None)
                self._existing.add(name)
                self.add_missing_columns(TABLES[name])  # the descriptions (DDL has made the columns)
                checked.add(name)
            elif name not in checked:
                checked.add(name)
                spec = TABLES[name]
                if (
                    spec.name in BUCKET_KEYS
                    and self.client.get_table(self._table_id(name)).labels.get(KEYS_LABEL) != "1"
                ):
                    self.migrate_bucket_keys(spec)  # once per table: the label below records it (no job after)
                self.add_missing_columns(spec)  # a table an earlier version made: bring it up to the model

    def existing_columns(self, table: str) -> set[str]:
        return {field.name for field in self.client.get_table(self._table_id(table)).schema}

    def add_missing_columns(self, spec: TableSpec) -> list[str]:
        """Bring the table up to its row model through the tables API (a schema patch, not a query job): add the
        model's new nullable columns, and set the table and column descriptions from the model where they differ
        (what the BigQuery console shows analysts). Returns the columns added."""

        table = self.client.get_table(self._table_id(spec.name))
        missing = missing_columns(spec, {field.name for field in table.schema})
        wanted = {c.name: c.description or None for c in schema.columns(spec.model)}
        fields = [
            _field(f.name, f.field_type, f.mode, wanted.get(f.name, f.description), f.fields) for f in table.schema
        ]
        fields += [_field(c.name, c.bq_type, c.mode, wanted[c.name]) for c in missing]
        description = schema.table_description(spec.model) or None
        changed = []
        if spec.name in BUCKET_KEYS and table.labels.get(KEYS_LABEL) != "1":
            table.labels = {**table.labels, KEYS_LABEL: "1"}  # its bucket references are keys (created or migrated)
            changed.append("labels")
        if [(f.name, f.description) for f in fields] != [(f.name, f.description) for f in table.schema]:
            table.schema = fields
            changed.append("schema")
        if table.description != description:
            table.description = description
            changed.append("description")
        if changed:
            self.client.update_table(table, changed)
        return [c.name for c in missing]

    def compact(self) -> bool:
        """Nothing to rewrite: deleted rows leave BigQuery through time travel and fail-safe (see
        adpipeline/faces/README.md, "Privacy")."""
        return False

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._dataset_ready = False
            self._existing = None

    # --- primitives ------------------------------------------------------------------------------
    def table_ref(self, table: str) -> str:
        return f"`{self.project}.{self.dataset}.{table}`"

    def _table_id(self, table_or_ref: str) -> str:
        """``x`` or ```p.d.x``` → ``p.d.x`` (the client's table id form)."""
        bare = table_or_ref.strip().strip("`")
        return bare if bare.count(".") == 2 else f"{self.dataset_id}.{bare}"

    def table_exists(self, table: str) -> bool:
        from google.api_core.exceptions import NotFound

        self.ensure_dataset()
        try:
            self.client.get_table(self._table_id(table))
        except NotFound:
            return False
        return True

    def table_versions(self, tables: Sequence[str]) -> dict[str, str]:
        """Row count and XOR of row fingerprints per table, in one query job. Exact on any BigQuery (the
        emulator keeps no modification times, so the tables API's ``modified`` could not be tested); it reads the
        tables' bytes, which a final rebuild reads anyway: the watermark saves the comparison and the writes."""
        present = [t for t in tables if self.table_exists(t)]
        out = dict.fromkeys(tables, "absent")
        if not present:
            return out
        parts = [
            f"SELECT {i} AS k, COUNT(*) AS n, BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(r))) AS h "
            f"FROM {self.source_ref(t) if '.' in t else self.table_ref(t)} AS r"
            for i, t in enumerate(present)
        ]
        frame = self._read("\nUNION ALL\n".join(parts), None)
        for row in frame.itertuples(index=False):
            h = None if pd.isna(row.h) else int(row.h)
            out[present[int(row.k)]] = f"{int(row.n)}:{h}"
        return out

    def _run(self, sql: str, params: Mapping[str, Any] | None) -> pd.DataFrame:
        from google.cloud import bigquery

        self.ensure_dataset()
        config = bigquery.QueryJobConfig(query_parameters=query_parameters(params))
        job = self.client.query(sql, job_config=config, location=self.location)
        result = job.result()
        self.jobs[job.statement_type or "QUERY"] += 1
        if job.statement_type == "DROP_TABLE":
            self._existing = None  # list again before the next ensure_tables
        if not result.schema:  # DDL / DML / scripts without a final SELECT
            return pd.DataFrame()
        with warnings.catch_warnings():
            # google-cloud-bigquery>=3.3x nudges towards pandas-gbq; to_dataframe stays supported
            warnings.filterwarnings("ignore", "Retrieving DataFrames", PendingDeprecationWarning)
            return result.to_dataframe(create_bqstorage_client=False)

    def _read(self, sql: str, params: Mapping[str, Any] | None) -> pd.DataFrame:
        """A SELECT through pandas-gbq (``read_gbq`` on this warehouse's client, so the same credentials and
        endpoint): BigQuery's own DataFrame reader, which runs short queries without a job where BigQuery allows
        (``query_and_wait``) and maps types with the db-dtypes pandas extension (DATE, TIME) and nullable ints."""
        import pandas_gbq

        self.ensure_dataset()
        config = {
            "query": {
                "useLegacySql": False,
                "parameterMode": "NAMED",
                "queryParameters": [p.to_api_repr() for p in query_parameters(params)],
            }
        }
        with warnings.catch_warnings():
            # both raised inside read_gbq: about the client call it makes, and its own user-agent format
            warnings.filterwarnings("ignore", "Retrieving DataFrames", PendingDeprecationWarning)
            warnings.filterwarnings("ignore", "In a future major release, the default", PendingDeprecationWarning)
            frame = pandas_gbq.read_gbq(
                sql,
                project_id=self.project,
                location=self.location,
                configuration=config,
                bigquery_client=self.client,
                use_bqstorage_api=False,  # REST: the Storage Read API is a separate permission, absent on emulators
                progress_bar_type=None,
            )
        self.jobs["SELECT"] += 1
        return frame

    def _load_stage(self, spec: TableSpec, rows: Sequence[Row]) -> str:
        from google.cloud import bigquery

        self.ensure_dataset()
        fields = schema_fields(spec.model)
        table_id = f"{self.dataset_id}._stage_{spec.name}_{uuid.uuid4().hex[:12]}"
        table = bigquery.Table(table_id, schema=fields)
        table.expires = dt.datetime.now(dt.UTC) + _STAGE_TTL
        self.client.create_table(table)
        payload = "".join(row.model_dump_json() + "\n" for row in rows).encode()
        config = bigquery.LoadJobConfig(
            schema=fields,
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        # size=None: a resumable upload whatever the size (the emulator rejects small multipart uploads)
        job = self.client.load_table_from_file(
            io.BytesIO(payload), table_id, job_config=config, size=None, location=self.location
        )
        job.result()
        self.jobs["load"] += 1
        return f"`{table_id}`"

    def _drop(self, table_ref: str) -> None:
        self.client.delete_table(self._table_id(table_ref), not_found_ok=True)
