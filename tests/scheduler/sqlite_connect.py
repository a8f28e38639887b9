"""SQLAlchemy connect arguments for the test cluster's SQLite metadata database (``[database]
sql_alchemy_connect_args``): a long busy timeout, so that a CLI call (``airflow backfill create``) that writes while
the scheduler holds the write lock waits for it instead of failing with "database is locked" after pysqlite's 5 s.
Airflow already puts the file in WAL mode."""

CONNECT_ARGS = {"timeout": 120}
