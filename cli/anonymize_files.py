"""`veil anonymize`: the service's engine, in-process, over local files (images and videos, told by content)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shared.settings import Settings
from worker.context import build_anonymizer
from worker.engine.errors import EngineError
from worker.engine.image_io import extension
from worker.engine.pipeline import AnonymizeOptions, ImageAnonymizer
from worker.engine.video import VideoAnonymizer, VideoOptions, sniff_video_format
from worker.engine.video.output import encoder_fields
from worker.video_job import container_name, video_limits


@dataclass
class FileOutcome:
    source: Path
    output: Path | None
    faces: int
    error_code: str | None
    plates: int = 0


def output_path(out_dir: Path, source: Path, fmt: str, taken: set[Path], *, suffix: str | None = None) -> Path:
    """`suffix` (with its dot) overrides the image format's extension, e.g. for a video container."""
    ext = suffix if suffix is not None else extension(fmt)
    candidate = out_dir / f"{source.stem}{ext}"
    n = 1
    while candidate in taken:  # two inputs with one stem (a/x.jpg, b/x.jpg) must not overwrite each other
        candidate = out_dir / f"{source.stem}-{n}{ext}"
        n += 1
    taken.add(candidate)
    return candidate


def anonymize_files(sources: list[Path], out_dir: Path, options: AnonymizeOptions, settings: Settings,
                    *, show_progress: bool = True, video: VideoOptions | None = None) -> list[FileOutcome]:
    """`video`: the options for videos (the CLI passes the service's video defaults); None: `options` on every
    frame with the settings' encoder options."""
    out_dir.mkdir(parents=True, exist_ok=True)
    anonymizer = build_anonymizer(settings)
    outcomes: list[FileOutcome] = []
    taken: set[Path] = set()
    columns = (TextColumn("[bold]anonymizing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("anonymize", total=len(sources))
        for source in sources:
            tmp = out_dir / f".{source.stem}.partial"
            try:
                if _is_video(source):
                    video_opts = video or VideoOptions(face=options, **encoder_fields(settings))
                    outcomes.append(_video(anonymizer, source, tmp, out_dir, video_opts, settings, taken, progress))
                else:
                    result = anonymizer.run(source, tmp, options, max_pixels=settings.max_image_pixels,
                                            jpeg_quality=settings.jpeg_quality, keep_metadata=settings.keep_metadata)
                    final = output_path(out_dir, source, result.output_format, taken)
                    tmp.replace(final)
                    labels = list(result.detections.labels)
                    outcomes.append(FileOutcome(source, final, labels.count("face"), None, labels.count("plate")))
            except EngineError as exc:
                outcomes.append(FileOutcome(source, None, 0, exc.code))
            except OSError:
                outcomes.append(FileOutcome(source, None, 0, "unreadable_file"))
            finally:
                tmp.unlink(missing_ok=True)
            progress.advance(task)
    return outcomes


def _is_video(source: Path) -> bool:
    with source.open("rb") as f:
        return sniff_video_format(f.read(64)) is not None


def _video(anonymizer: ImageAnonymizer, source: Path, tmp: Path, out_dir: Path, options: VideoOptions,
           settings: Settings, taken: set[Path], progress: Progress) -> FileOutcome:
    frames = progress.add_task(f"  {source.name}", total=None)

    def report(done: int, total: int) -> bool:
        progress.update(frames, completed=done, total=total or None)
        return True

    try:
        result = VideoAnonymizer(anonymizer.engines).run(
            source, tmp, options, limits=video_limits(settings), progress=report)
    finally:
        progress.remove_task(frames)
    final = output_path(out_dir, source, "", taken, suffix=f".{container_name(result.output_container)}")
    tmp.replace(final)
    tracks = result.tracks_by_target
    return FileOutcome(source, final, tracks.get("face", 0), None, tracks.get("plate", 0))
