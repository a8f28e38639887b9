"""SQLAlchemy connect arguments for the test cluster's SQLite metadata database (``[database]
sql_alchemy_connect_args``): a busy timeout of 120 s instead of pysqlite's 5 s, so that a process that needs the
write lock while another holds it waits longer on a loaded CI machine. (A write that must upgrade a read
transaction can still fail at once with "database is locked"; see ``AirflowCluster.backfill``.) Airflow already
puts the file in WAL mode."""

CONNECT_ARGS = {"timeout": 120}
