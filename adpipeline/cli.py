"""``adpipeline`` command line: demo, run, load-csv, query, summary, forget, migrate-thumbs, enroll, identify,
verify."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="adpipeline: creative intelligence for ad teams, as Airflow DAGs over a warehouse.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()

if TYPE_CHECKING:
    from adpipeline.settings import Settings
    from adpipeline.window import Window

StartOpt = Annotated[str, typer.Option(help="First date, YYYY-MM-DD.")]
EndOpt = Annotated[str | None, typer.Option(help="Last date (inclusive); defaults to --start.")]


def _settings() -> Settings:
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


def _run_chain(window: Window, direct: bool) -> None:
    from adpipeline.stages.chain import NOT_IN_CHAIN, covered_dags

    started = time.monotonic()
    console.print("DAGs covered: " + " → ".join(covered_dags()), highlight=False)
    console.print(
        "not run here: " + "; ".join(f"{dag_id} ({what})" for dag_id, what in NOT_IN_CHAIN.items()), highlight=False
    )
    if direct:
        from adpipeline.stages.chain import run_direct

        def step(dag_id: str, task_id: str, result: dict, seconds: float) -> None:
            counts = ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("stage", "window", "warning"))
            console.print(f"  [green]✓[/] {dag_id}.{task_id} ({seconds:.1f} s): {counts}")
            if result.get("warning"):
                console.print(f"  [yellow]![/] {result['warning']}", highlight=False)

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
    """Run the daily DAG chain for a date range: import, media, features, feature batches, faces, the gallery
    (enrol ADP_GALLERY_URL, match customers in the videos) and final, through Airflow's dag.test with the local
    SQLite metadata database, or in-process with --direct. Prints which DAGs it covers."""
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


@app.command()
def check(
    bigquery_dry_run: Annotated[
        bool,
        typer.Option(
            "--bigquery-dry-run",
            help="Also send every SQL file to BigQuery as a dry-run query job (free) and print the bytes it would "
            "scan; creates missing tables first, as the first run would.",
        ),
    ] = False,
    airflow: Annotated[
        bool, typer.Option(help="Check the pools and the DAG folder (needs the AIRFLOW_HOME metadata database).")
    ] = True,
) -> None:
    """Pre-flight check: settings, the warehouse and bucket reachable with the configured credentials, the face model
    files, the Airflow pools, the DAG folder parsing; with --bigquery-dry-run, every SQL file accepted by BigQuery.
    Exit status 1 when a check fails."""
    from adpipeline.preflight import run_checks

    failed = 0
    scanned = 0
    for result in run_checks(bigquery_dry_run=bigquery_dry_run, airflow=airflow):
        mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
        console.print(f"  {mark} {result.name}: {result.detail}", highlight=False)
        failed += not result.ok
        scanned += result.bytes_processed or 0
    if bigquery_dry_run:
        console.print(f"dry runs: {scanned:,} bytes would be scanned in all")
    if failed:
        console.print(f"[red]{failed} check(s) failed[/]")
        raise typer.Exit(1)
    console.print("[green]all checks passed[/]")


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
    """Run a BigQuery-dialect query ({{ table }} placeholders allowed) and print the result."""
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
    what: Annotated[
        str,
        typer.Argument(
            help="faces: face_performance as CSV plus a zip of each face's best crop; fatigue: creative_fatigue as "
            "CSV; effects: feature_effects (adjusted beside unadjusted) as CSV"
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports"),
) -> None:
    """Export a report to files."""
    if what in ("fatigue", "effects"):
        from adpipeline.report import export_table

        path, rows = export_table(_settings(), what, out)
        console.print(f"wrote {path} ({rows} rows)")
        return
    if what != "faces":
        raise typer.BadParameter("one of faces, fatigue, effects", param_hint="WHAT")
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
    console.rule("3. customers in the videos, and one photo verified against a video")
    from adpipeline.demo.identity import print_identity_summary, run_identity, write_customer_base

    os.environ.setdefault("ADP_GALLERY_URL", str(write_customer_base(sample_dir / "customers")))
    identity = run_identity(_settings(), Window(manifest.start, manifest.end), sample_dir)
    console.print(f"gallery: {identity['enrol']['photos']} photos, {identity['match']['appearances']} appearances")
    console.rule("4. results")
    from adpipeline.report import print_summary

    print_summary(settings, console)
    print_identity_summary(_settings(), console)
    console.print(f"demo finished in {time.monotonic() - t0:.0f} s")


@app.command()
def forget(
    customer_id: Annotated[str | None, typer.Option("--customer-id", help="An enrolled customer to forget.")] = None,
    face_id: Annotated[str | None, typer.Option("--face-id", help="A unique face to forget.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go, with counts.")] = False,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Lift the suppression of earlier requests for this id.")
    ] = False,
) -> None:
    """Forget one person everywhere: vectors, crops, tracks, gallery entries, appearances, verifications, output
    copies and JSON records, and their rows in the performance tables; keeps them from coming back (the same function
    as the adp_forget_person DAG). One audit row per request in privacy_requests."""
    if bool(customer_id) == bool(face_id):
        raise typer.BadParameter("give exactly one of --customer-id and --face-id")
    from adpipeline.stages import privacy
    from adpipeline.stages.context import StageContext
    from adpipeline.window import Window

    today = dt.date.today()
    with StageContext(_settings(), Window(today, today), run_id="cli") as ctx:
        out = privacy.forget_person(ctx, customer_id=customer_id, face_id=face_id, dry_run=dry_run, withdraw=withdraw)
    verb = "would change" if dry_run else "changed"
    console.print(f"{out['action']} request {out['request_id']}: {verb}")
    for target, count in out["counts"].items():
        console.print(f"  {target:<48} {count:>8}")
    if not dry_run and out["suppressions"]:
        console.print(f"  suppression rows written (no vectors): {out['suppressions']}")
    if out["note"]:
        console.print(f"  note: {out['note']}")


@app.command("migrate-thumbs")
def migrate_thumbs(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count the rows by stored format.")] = False,
) -> None:
    """Bring every image_hashes thumbnail to the one stored format (format 3): rows in an earlier format are
    re-analysed from their bytes in the bucket; groups do not move. Run once after upgrading; safe to run again."""
    from adpipeline.stages.context import StageContext
    from adpipeline.stages.media_thumbs import migrate_thumbs as migrate
    from adpipeline.window import Window

    today = dt.date.today()
    with StageContext(_settings(), Window(today, today), run_id="cli-migrate-thumbs") as ctx:
        out = migrate(ctx, dry_run=dry_run)
    console.print(
        f"thumbnail format {out['format']}{' (dry run)' if dry_run else ''}: "
        + ", ".join(f"{k}={v}" for k, v in out.items() if k not in ("stage", "window", "format", "dry_run")),
        highlight=False,
    )
    if out.get("blob_missing") or out.get("unusable"):
        console.print(
            "  rows left in an earlier format: grouping refuses them until they are fetched and analysed again"
        )


@app.command()
def enroll(
    source: Annotated[str, typer.Argument(help="Customer base: folder or gs:// URL (<id>.jpg|png|webp or <id>/...).")],
) -> None:
    """Enrol a customer base into the gallery (only photos whose bytes changed are redone)."""
    import datetime as _dt

    from adpipeline.stages import gallery
    from adpipeline.stages.context import StageContext
    from adpipeline.window import Window

    today = _dt.date.today()
    with StageContext(_settings(), Window(today, today), run_id="cli-enroll") as ctx:
        result = gallery.enrol(ctx, source=source)
        rows = ctx.warehouse.query(
            "SELECT status, COALESCE(reason, '') AS reason, COUNT(*) AS n FROM {{ gallery_photos }} "
            "GROUP BY status, reason ORDER BY status, reason"
        )
    console.print(", ".join(f"{k}={v}" for k, v in result.items() if k not in ("stage", "window")))
    for r in rows.itertuples():
        console.print(f"  {r.status} {r.reason}: {r.n}")


@app.command()
def verify(
    image: Annotated[str, typer.Argument(help="Photo of the person: a path, https:// or gs:// URL.")],
    video: Annotated[str, typer.Argument(help="The video: a path, https:// or gs:// URL.")],
    far: Annotated[
        float | None, typer.Option(help="False-accept rate for the threshold (default ADP_VERIFY_FAR).")
    ] = None,
) -> None:
    """Is the person in this photo in this video? Prints the answer and stores it in face_verifications."""
    import datetime as _dt
    import json as _json

    from adpipeline.stages import verify as verify_stage
    from adpipeline.stages.context import StageContext
    from adpipeline.window import Window

    settings = _settings()
    local = [Path(p).resolve().parent for p in (image, video) if Path(p).exists()]
    if local:  # the operator's own files: allowed where they lie
        roots = [*settings.local_media_roots, *local]
        settings = settings.model_copy(update={"allow_local_paths": True, "local_media_roots": roots})
    today = _dt.date.today()
    with StageContext(settings, Window(today, today), run_id="cli-verify") as ctx:
        row = verify_stage.verify_urls(
            ctx,
            str(Path(image).resolve()) if Path(image).exists() else image,
            str(Path(video).resolve()) if Path(video).exists() else video,
            far=far,
        )
    console.print_json(
        _json.dumps(
            {
                k: row[k]
                for k in (
                    "status",
                    "reason",
                    "matched",
                    "confidence_pct",
                    "face_in_image",
                    "faces_in_image",
                    "face_in_video",
                    "frames_checked",
                    "best_frame_time_s",
                    "distance",
                    "threshold",
                    "far",
                    "backend",
                    "model_id",
                )
            }
        )
    )
    if row["status"] not in ("ok", "no_face_in_video"):
        raise typer.Exit(2)


@app.command()
def identify(
    source: Annotated[str, typer.Option("--source", help="Video file, http(s)/rtsp URL, or camera index (0, 1...).")],
    out: Annotated[Path | None, typer.Option(help="Write the annotated video here (.mp4).")] = None,
    json_dir: Annotated[
        str | None,
        typer.Option(
            help="Write one JSON record per sampled frame under DIR/YYYYMMDD/: a folder, a bucket URL (gs://...), "
            "or 'bucket' / 'bucket:PREFIX' for the configured bucket (ADP_BUCKET_URL; PREFIX default identify)."
        ),
    ] = None,
    location: Annotated[
        str | None, typer.Option(help="A tag recorded in each JSON record (e.g. the store or camera).")
    ] = None,
    gallery_dir: Annotated[
        str | None,
        typer.Option("--gallery", help="Enrol this folder in memory instead of using the warehouse gallery."),
    ] = None,
    fps: Annotated[float, typer.Option(help="Frames looked at per second of video.")] = 2.0,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds of source time.")] = None,
) -> None:
    """Name the gallery's customers (or "unknown") in a video, a stream or a camera; Ctrl-C keeps what was done."""
    import datetime as _dt

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from adpipeline.faces.identify import Gallery
    from adpipeline.faces.identify import identify as run_identify
    from adpipeline.faces.video import shared_engine

    settings = _settings()
    json_dir = records_location(json_dir, settings) if json_dir else None
    engine = shared_engine(settings)
    if gallery_dir:
        from adpipeline.faces.gallery import gallery_from_folder

        ids, templates, _ = gallery_from_folder(engine, gallery_dir, settings)
        gallery = Gallery(engine.model_id, ids, templates)
    else:
        from adpipeline.stages import gallery as gallery_stage
        from adpipeline.stages.context import StageContext
        from adpipeline.window import Window

        today = _dt.date.today()
        with StageContext(settings, Window(today, today), run_id="cli-identify") as ctx:
            gallery = gallery_stage.load_gallery(ctx)
    console.print(f"gallery: {len(gallery.customer_ids)} customers ({gallery.model_id})")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[t]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"identify {source}", total=None, t="")

        def progress(t: float, duration: float | None) -> None:
            bar.update(task, total=duration, completed=t, t=f"{t:.1f}s")

        try:
            result = run_identify(
                source,
                gallery,
                settings,
                engine=engine,
                sample_fps=fps,
                out=out,
                json_dir=json_dir,
                max_seconds=max_seconds,
                progress=progress,
                location=location,
            )
        except (OSError, ValueError) as exc:
            console.print(f"[red]cannot read {source}: {exc}[/]")
            raise typer.Exit(2) from exc
    seen = ", ".join(f"{c} ({n} frames)" for c, n in sorted(result.customers.items())) or "nobody from the gallery"
    console.print(
        f"{result.frames_decoded} frames decoded, {result.frames_sampled} looked at, {result.faces} faces, "
        f"{result.named} named: {seen}; {result.processing_fps:.1f} frames/s"
        + (f" (source {result.source_fps:.0f} fps)" if result.source_fps else "")
        + (" [interrupted: kept what was done]" if result.interrupted else "")
    )
    if result.out:
        console.print(f"annotated video: {result.out}")
    if json_dir:
        console.print(f"{result.records} JSON records under {json_dir}")


def records_location(json_dir: str, settings: Settings) -> str:
    """Where ``identify`` writes its JSON records: ``bucket`` or ``bucket:PREFIX`` is under the configured bucket
    (PREFIX default ``identify``); a URL (``gs://...``) or a folder as given."""
    if json_dir == "bucket" or json_dir.startswith("bucket:"):
        prefix = json_dir.partition(":")[2].strip("/") or "identify"
        return f"{settings.resolved_bucket_url.rstrip('/')}/{prefix}"
    return json_dir if "://" in json_dir else str(Path(json_dir).resolve())


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
