"""`veil`: run the service's processes, migrate the database, and anonymize files in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.admin import keys_app, tenants_app
from cli.eval import eval_command
from cli.gdpr import gdpr_app
from cli.models import models_app
from shared.settings import get_settings

app = typer.Typer(help="Veil: find and mask faces in vehicle-camera footage.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(gdpr_app, name="gdpr")
app.add_typer(models_app, name="models")
app.command("eval")(eval_command)
console = Console(stderr=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the Alembic migrations (the only way the schema is created)."""
    from shared.db import make_engine
    from shared.migrate import upgrade

    upgrade(make_engine(get_settings()), revision)
    console.print(f"database at revision {revision}")


@app.command()
def api(host: Annotated[str | None, typer.Option()] = None,
        port: Annotated[int | None, typer.Option()] = None) -> None:
    """Run the HTTP API."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port,
                log_level=settings.log_level.lower(), proxy_headers=True, access_log=False,
                log_config=None)  # uvicorn's loggers go to our JSON root handler, not its own text format


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = (
        "images,videos,maintenance,webhooks,gdpr"),
    concurrency: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    beat: Annotated[bool, typer.Option(help="Also schedule the periodic sweeper (run one per deployment).")] = False,
) -> None:
    """Run a Celery worker (a real `celery worker`, configured from VEIL_ settings)."""
    from shared.logging_setup import configure_logging
    from worker.provider_check import ProviderCheckFailed
    from worker.startup import prepare_worker

    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        prepare_worker(settings)
    except ProviderCheckFailed as exc:
        console.print(f"[red]veil worker refused to start:[/] {exc}", soft_wrap=True)
        raise typer.Exit(3) from None
    from worker.tasks import create_worker_app  # after prepare_worker: see its docstring

    argv = ["worker", "--queues", queues, "--loglevel", settings.log_level.upper(),
            "--concurrency", str(concurrency or settings.worker_concurrency),
            "--hostname", f"veil-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    if beat:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--beat", "--schedule", str((settings.data_dir / "beat-schedule").resolve())]
    create_worker_app(settings).worker_main(argv=argv)


@app.command()
def reap() -> None:
    """Run one pass of the sweeper: requeue expired leases, republish stale work, purge what retention ends."""
    from shared.db import make_engine
    from shared.storage import make_storage
    from worker.celery_app import create_celery
    from worker.publisher import Publisher
    from worker.reaper import reap_and_publish

    settings = get_settings()
    report = reap_and_publish(engine=make_engine(settings), storage=make_storage(settings),
                              settings=settings, publisher=Publisher(create_celery(settings)))
    table = Table("requeued", "dead", "republished", "inputs deleted", "outputs deleted", "archives deleted",
                  "orphans deleted", "webhooks sent")
    table.add_row(*(str(v) for v in (report.requeued, report.dead, report.republished, report.inputs_deleted,
                                     report.outputs_deleted, report.archives_deleted, report.orphans_deleted,
                                     len(report.webhooks_published))))
    Console().print(table)


@app.command()
def serve(port: Annotated[int | None, typer.Option()] = None) -> None:
    """Everything on one machine with embedded defaults: migrations, one worker, the API."""
    import uvicorn

    from api.app import create_app
    from cli.local_key import ensure_local_key
    from shared.db import make_engine
    from shared.migrate import upgrade

    settings = get_settings()
    engine = make_engine(settings)
    upgrade(engine)
    key = ensure_local_key(engine, settings)
    # The worker gets its own session: a Ctrl-C or a signal to our process group must reach only its main
    # process, which then stops its pool children itself. Signalled all at once, billiard can deadlock on
    # shutdown (a child dies holding the task queue's lock) and leave the worker hanging forever.
    worker_proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--beat"],
                                   start_new_session=True, preexec_fn=_die_with_parent)
    url = settings.public_url or f"http://{settings.api_host}:{port or settings.api_port}"
    console.print(f"[bold green]Veil is up:[/] {url}  (API docs at {url}/docs, dashboard at {url}/dashboard)")
    console.print(f"API key for tenant 'local' (also in {key.path}): {key.value}")
    try:
        uvicorn.run(create_app(settings), host=settings.api_host, port=port or settings.api_port,
                    log_level="warning", access_log=False, log_config=None)
    finally:
        worker_proc.terminate()
        try:
            worker_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker_proc.pid, signal.SIGKILL)
            worker_proc.wait()


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM if `veil serve` itself is killed outright."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@app.command()
def anonymize(
    photos: Annotated[list[Path], typer.Argument(
        exists=True, dir_okay=False, help="Images (JPEG, PNG, WebP) and videos (MP4, MOV, MKV, AVI) to anonymize.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the anonymized files.")],
    targets: Annotated[str, typer.Option(help="What to mask, comma-separated: face, plate.")] = "face,plate",
    preset: Annotated[str | None, typer.Option(
        help="Detection preset: fast, balanced or thorough (default: VEIL_DEFAULT_PRESET).")] = None,
    mask: Annotated[str, typer.Option(help="blur, pixelate or solid.")] = "blur",
    output_format: Annotated[str, typer.Option(
        "--format", help="same, png, jpeg or webp (images; videos keep their container, AVI becomes MKV).")] = "same",
    threshold: Annotated[float | None, typer.Option(help="Detector score threshold.")] = None,
) -> None:
    """Anonymize files in this process with the service's engine."""
    from pydantic import ValidationError

    from cli.anonymize_files import anonymize_files
    from shared.job_options import JobOptions
    from worker.image_job import engine_options
    from worker.startup_heap import freeze_startup_heap
    from worker.video_job import video_options

    try:
        options = JobOptions.model_validate({"targets": [t.strip() for t in targets.split(",") if t.strip()],
                                             "mask": mask, "format": output_format, "threshold": threshold,
                                             "preset": preset})
    except ValidationError as exc:
        console.print(f"[red]invalid option:[/] {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from None
    settings = get_settings()
    freeze_startup_heap()
    # Videos get what a video job with these options gets from the service: its preset, threshold and cadence.
    outcomes = anonymize_files(photos, out, engine_options(options), settings,
                               video=video_options(options, settings))
    failed = [o for o in outcomes if o.error_code]
    faces, plates = sum(o.faces for o in outcomes), sum(o.plates for o in outcomes)
    console.print(f"{len(outcomes) - len(failed)} done, {len(failed)} failed, {faces} faces and {plates} plates "
                  f"masked -> {out}")
    for o in failed:
        console.print(f"[red]failed[/] {o.source.name}: {o.error_code}")
    raise typer.Exit(1 if failed else 0)


if __name__ == "__main__":
    app()
