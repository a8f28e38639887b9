"""The pipeline stages. Each is a plain function ``run(ctx) -> summary`` that an Airflow task (or the CLI) calls;
none of them imports Airflow."""
