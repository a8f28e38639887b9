"""``adpipeline`` command line: demo, run, load-csv, query, summary."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="adpipeline: creative intelligence for ad teams, as Airflow DAGs over a warehouse.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()

StartOpt = Annotated[str, typer.Option(help="First date, YYYY-MM-DD.")]
EndOpt = Annotated[str | None, typer.Option(help="Last date (inclusive); defaults to --start.")]


def _settings():
    from adpipeline.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


def _migrate_airflow_db() -> None:
    """Create/upgrade the local Airflow metadata database (SQLite under AIRFLOW_HOME)."""
    from adpipeline.paths import apply_local_airflow_env

    env = apply_local_airflow_env()
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=os.environ.copy(), stdout=subprocess.DEVNULL
    )


def _run_chain(window, direct: bool) -> None:
    from adpipeline.window import Window

    assert isinstance(window, Window)
    started = time.monotonic()
    if direct:
        from adpipeline.stages.chain import run_direct

        def step(dag_id: str, task_id: str, result: dict, seconds: float) -> None:
            counts = ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("stage", "window"))
            console.print(f"  [green]✓[/] {dag_id}.{task_id} ({seconds:.1f} s): {counts}")

        console.print(f"running the stages in-process for {window} (each line as its step finishes)")
        run_direct(_settings(), window, on_step=step)
    else:
        _migrate_airflow_db()
        from adpipeline.airflow_adapter import CHAIN, run_chain
        from adpipeline.paths import DAGS

        def finished(dag_id: str, state: str, seconds: float) -> None:
            colour = "green" if state == "success" else "red"
            console.rule(
                f"[{colour}]{dag_id}: {state}[/] in {seconds:.1f} s ({time.monotonic() - started:.0f} s so far)"
            )

        console.print(f"running {len(CHAIN)} DAGs with dag.test for {window}; each DAG reports when it finishes")
        states = run_chain(window, str(DAGS), on_dag=finished)
        if any(state != "success" for _, state in states):
            console.print("[red]the chain stopped; see the task logs above[/]")
            raise typer.Exit(1)
    console.print(f"chain finished for {window} in {time.monotonic() - started:.1f} s")


@app.command()
def run(
    start: StartOpt,
    end: EndOpt = None,
    direct: Annotated[bool, typer.Option(help="Call the stages in-process instead of through Airflow.")] = False,
) -> None:
    """Run the DAG chain import → media → features → faces → final for a date range (through Airflow's
    ``dag.test`` with the local SQLite metadata database, unless --direct)."""
    from adpipeline.window import Window

    _run_chain(Window.parse(start, end), direct)


@app.command("airflow-init")
def airflow_init(
    unpause: Annotated[
        bool, typer.Option(help="Unpause every adp_* DAG (the schedule and asset triggers start).")
    ] = True,
) -> None:
    """Prepare the Airflow install in AIRFLOW_HOME for adpipeline: create the pools the DAGs use (from the one list in
    code), parse the DAG folder into the metadata database, unpause the adp_* DAGs. Safe to re-run."""
    from adpipeline.airflow_adapter import init_airflow

    for line in init_airflow(unpause=unpause):
        console.print(f"  [green]✓[/] {line}")


@app.command("load-csv")
def load_csv(
    path: Path,
    fmt: Annotated[
        str, typer.Option("--format", help="raw (our columns) or prototype (Video URL, Performance)")
    ] = "raw",
    date: Annotated[str | None, typer.Option(help="Date for prototype rows (they carry none).")] = None,
) -> None:
    """MERGE a CSV of ads into the source table (raw_ads)."""
    from adpipeline.sample_load import load_ads_csv

    n = load_ads_csv(_settings(), path, fmt=fmt, date=dt.date.fromisoformat(date) if date else None)
    console.print(f"merged {n} rows into the source table")


@app.command()
def query(sql: str) -> None:
    """Run a BigQuery-dialect query (``{{ table }}`` placeholders allowed) and print the result."""
    from adpipeline.warehouse import get_warehouse

    with get_warehouse(_settings()) as wh:
        frame = wh.query(sql)
    console.print(frame.to_string(index=False, max_colwidth=60))


@app.command()
def summary() -> None:
    """Print what the pipeline produced: table sizes, fetch statuses, duplicate groups, features, top faces."""
    from adpipeline.report import print_summary

    print_summary(_settings(), console)


@app.command()
def report(
    what: Annotated[str, typer.Argument(help="faces: face_performance as CSV plus a zip of each face's best crop")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports"),
) -> None:
    """Export a report to files."""
    if what != "faces":
        raise typer.BadParameter("only 'faces' is available", param_hint="WHAT")
    from adpipeline.report import export_faces

    csv_path, zip_path, n = export_faces(_settings(), out)
    console.print(f"wrote {csv_path} and {zip_path} ({n} crops)")


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="Days of sample ads.")] = 14,
    direct: Annotated[bool, typer.Option(help="Skip Airflow; call the stages in-process.")] = False,
) -> None:
    """Generate the sample ads and media, load them, run the whole chain through Airflow, print a summary."""
    os.environ.setdefault("ADP_ALLOW_LOCAL_PATHS", "true")
    # Task logs go to airflow_home/logs; the terminal shows each DAG's outcome and the summary.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    settings = _settings()
    from adpipeline.demo.sample import generate_sample
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.window import Window

    t0 = time.monotonic()
    sample_dir = settings.home.resolve() / "sample"
    console.rule("1. sample data")
    manifest = generate_sample(sample_dir, days=days)
    console.print(
        f"{manifest.n_rows} ad rows over {days} days, {manifest.n_images} images, {manifest.n_videos} "
        f"videos in {sample_dir} ({time.monotonic() - t0:.1f} s)"
    )
    n = load_ads_csv(settings, manifest.raw_ads_csv, fmt="raw")
    console.print(f"merged {n} rows into source table '{settings.source_table}'")
    console.rule("2. DAG chain " + ("(in-process)" if direct else "(Airflow dag.test, SQLite metadata DB)"))
    _run_chain(Window(manifest.start, manifest.end), direct)
    console.rule("3. results")
    from adpipeline.report import print_summary

    print_summary(settings, console)
    console.print(f"demo finished in {time.monotonic() - t0:.0f} s")


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
