"""Videos through the real service: API -> Postgres -> Redis (queue `videos`) -> celery worker -> storage -> API."""

from __future__ import annotations

import io
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared import tenants
from shared.settings import Settings
from shared.storage import LocalStorage, input_key
from shared.tables import Job
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg, astronaut_rgb
from tests.integration.conftest import TENANT, WorkerProcess, start_worker, stored_keys, wait_for_status
from worker.reaper import reap_once

TERMINAL = {"succeeded", "failed", "dead", "cancelled"}


def make_clip(*, frames: int = 36, width: int = 320, height: int = 240, fps: int = 12, audio: bool = True,
              video: bool = True, codec: str = "libx264", container: str = "mp4", faststart: bool = False) -> bytes:
    """A clip with the astronaut's face drifting across a grey frame, and a 440 Hz AAC tone."""
    face = np.asarray(Image.fromarray(astronaut_rgb()).resize((height, height)))
    # A real file: moving the index to the front (faststart) reopens the output by name.
    fd, name = tempfile.mkstemp(suffix=".clip")
    os.close(fd)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(name, "w", format=container, options=options) as out:
        vstream = None
        if video:
            vstream = out.add_stream(codec, rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                vstream.options = {"preset": "ultrafast"}
            elif codec == "libx265":
                vstream.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        astream = out.add_stream("aac", rate=44100, layout="mono") if audio else None
        if vstream is not None:
            for i in range(frames):
                img = np.full((height, width, 3), 90, np.uint8)
                x = (i * 3) % max(1, width - height)
                img[:, x:x + height] = face
                for packet in vstream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            out.mux(vstream.encode())
        if astream is not None:
            samples, chunk = int(44100 * frames / fps), 1024
            t = np.arange(samples) / 44100
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, samples, chunk):
                frame = av.AudioFrame.from_ndarray(tone[None, start:start + chunk], format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 44100, start, Fraction(1, 44100)
                for packet in astream.encode(frame):
                    out.mux(packet)
            out.mux(astream.encode())
    data = Path(name).read_bytes()
    Path(name).unlink()
    return data


def submit(client: TestClient, data: bytes, name: str = "clip.mp4", **form: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", files={"file": (name, data, "application/octet-stream")}, data=form)


@pytest.fixture(scope="module")
def video_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video-worker-tmp")


@pytest.fixture(scope="module")
def video_worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory,
                 video_tmp: Path) -> Iterator[WorkerProcess]:
    """Consumes `videos` only; the session's worker consumes `images`: long videos never block photos."""
    w = start_worker(settings, tmp_path_factory.mktemp("video-worker") / "worker.log", queues="videos",
                     extra_env={"TMPDIR": str(video_tmp)})
    yield w
    w.stop()


def _read(data: bytes) -> tuple[int, tuple[int, int], list[str]]:
    with av.open(io.BytesIO(data)) as container:
        v = container.streams.video[0]
        size = (v.codec_context.width, v.codec_context.height)
        kinds = [s.type for s in container.streams]
        frames = sum(1 for _ in container.decode(video=0))
    return frames, size, kinds


def test_video_is_anonymized_end_to_end(client: TestClient, video_worker: WorkerProcess,
                                        settings: Settings) -> None:
    clip = make_clip()
    response = submit(client, clip)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "video" and job["input_media_type"] == "video/mp4"

    done = wait_for_status(client, job["id"], TERMINAL, timeout=120)
    assert done["status"] == "succeeded", done
    assert done["output_media_type"] == "video/mp4" and done["progress"] == 1.0
    assert done["video"]["frames_done"] == done["video"]["frames_total"] == 36
    assert done["video"]["fps"] > 0 and done["video"]["eta_seconds"] == 0
    manifest = done["manifest"]
    assert manifest["frames"] == 36 and manifest["crf"] == settings.video_crf and manifest["output_codec"]
    assert "tracker" in manifest and manifest["models"][0]["name"] == "yunet_n"
    # the video operating point is recorded: detection preset, face threshold, cadence per target run
    assert manifest["preset"] == settings.video_detection_preset
    assert manifest["tasks"]["face"]["score_threshold"] == settings.video_face_threshold
    assert manifest["tracker"]["cadence"]["face"] == settings.video_face_cadence

    result = client.get(f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    frames, size, kinds = _read(result.content)
    assert frames == 36 and size == (320, 240) and "audio" in kinds
    # The face is masked: the output differs from the input where the face was.
    assert done["faces_found"] and done["faces_found"] >= 1
    # Plates are counted the same way, as tracks: the job view agrees with the manifest.
    assert done["plates_found"] == manifest["tracks_by_target"].get("plate", 0)
    mine = [key for key in stored_keys(settings) if job["id"] in key]
    assert len(mine) == 1 and mine[0].startswith(f"outputs/{job['id']}/") and mine[0].endswith(".mp4")


def test_mkv_and_avi_with_other_codecs(client: TestClient, video_worker: WorkerProcess) -> None:
    cases = [("mkv", "libx265", "video/x-matroska"), ("avi", "mpeg4", "video/x-msvideo")]
    for container, codec, media in cases:
        clip = make_clip(frames=12, container="matroska" if container == "mkv" else container, codec=codec,
                         audio=container == "mkv")
        job = submit(client, clip, f"clip.{container}").json()
        assert job["input_media_type"] == media, job
        done = wait_for_status(client, job["id"], TERMINAL, timeout=120)
        assert done["status"] == "succeeded", (container, done)
        frames, size, _ = _read(client.get(f"/v1/jobs/{job['id']}/result").content)
        assert frames == 12 and size == (320, 240)


def test_truncated_video_fails_with_a_reason_and_the_worker_survives(
        client: TestClient, video_worker: WorkerProcess, settings: Settings) -> None:
    # Index first (faststart), then cut: the header and first frames read, the rest of the footage is gone.
    clip = make_clip(faststart=True)
    response = submit(client, clip[: len(clip) // 2])
    assert response.status_code == 202, response.text
    failed = wait_for_status(client, response.json()["id"], TERMINAL, timeout=60)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "corrupt_video"
    assert failed["attempts"] == 1  # bad input is not retried
    assert [k for k in stored_keys(settings) if k.startswith("outputs/")] == []
    assert video_worker.alive()
    good = submit(client, make_clip(frames=12)).json()
    assert wait_for_status(client, good["id"], TERMINAL, timeout=120)["status"] == "succeeded"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: make_clip(video=False), "unsupported_media_type"),  # an MP4 with audio only
    (lambda: make_clip()[:30_000], "corrupt_video"),  # cut before its index (at the end): nothing to read
    (lambda: b"\x1a\x45\xdf\xa3" + b"\x00" * 200, "corrupt_video"),  # an EBML magic and nothing else
    (lambda: zero_frame_mp4(), "unsupported_media_type"),  # a video track with no frames in it
    (lambda: absurd_dimensions_mkv(), "corrupt_video"),  # declares 65535 x 65535: refused without decoding
], ids=["audio-only", "cut-before-index", "bare-ebml", "zero-frames", "absurd-dimensions"])
def test_files_that_are_no_readable_video_are_refused_at_upload(
        client: TestClient, settings: Settings, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    response = submit(client, make())
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["code"] == "unsupported_media_type" and body["reason"] == reason and body["detail"]
    assert stored_keys(settings) == []


def test_videos_over_the_duration_or_resolution_limit_are_refused_at_upload(
        settings: Settings, api_key: str) -> None:
    from api.app import create_app

    clip = make_clip(frames=24, fps=12)  # 2 s of 320x240
    for update, code in (({"max_video_width": 300}, "video_too_large"),
                         ({"max_video_duration_s": 1.0}, "video_too_long")):
        strict = settings.model_copy(update=update)
        with TestClient(create_app(strict), headers={"Authorization": f"Bearer {api_key}"}) as c:
            response = c.post("/v1/jobs", files={"file": ("clip.mp4", clip)})
        assert response.status_code == 422 and response.json()["code"] == code, response.text
    assert stored_keys(settings) == []


def test_video_over_its_upload_limit_is_413(settings: Settings, api_key: str) -> None:
    from api.app import create_app

    clip = make_clip(frames=12)
    small = settings.model_copy(update={"max_video_upload_bytes": len(clip) - 1})
    with TestClient(create_app(small), headers={"Authorization": f"Bearer {api_key}"}) as c:
        response = c.post("/v1/jobs", files={"file": ("clip.mp4", clip)})
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
        assert response.json()["kind"] == "video"
        # The image limit is its own: a photo still fits.
        assert c.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}).status_code == 202


def test_cancelling_a_running_video_stops_it_and_leaves_nothing(
        client: TestClient, video_worker: WorkerProcess, worker: WorkerProcess, settings: Settings,
        video_tmp: Path) -> None:
    long_clip = make_clip(frames=360, width=1280, height=720, fps=30)
    job = submit(client, long_clip).json()
    deadline = time.monotonic() + 60
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job['id']}").json()
        if body["status"] == "running" and body["progress"] > 0 and body.get("video"):
            break
        assert body["status"] in ("queued", "running"), body
        time.sleep(0.1)
    assert body["video"]["frames_done"] > 0 and body["video"]["frames_total"] == 360, body
    assert body["video"]["frames_done"] < 360, "the clip finished before it could be cancelled"

    # Meanwhile a photo is not held up behind the video: another queue, another worker.
    photo = client.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}).json()
    assert wait_for_status(client, photo["id"], TERMINAL, timeout=30)["status"] == "succeeded"
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"

    cancelled_at = time.monotonic()
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    # The worker notices within a progress interval: its one slot is free for the next video at once.
    follow = submit(client, make_clip(frames=12)).json()
    while client.get(f"/v1/jobs/{follow['id']}").json()["status"] == "queued":
        assert time.monotonic() - cancelled_at < 5, "the cancelled video still holds the worker"
        time.sleep(0.05)
    assert wait_for_status(client, follow["id"], TERMINAL, timeout=60)["status"] == "succeeded"
    assert [k for k in stored_keys(settings) if job["id"] in k] == []
    # The job's scratch folder (and the engine's partial output in it) is gone; other tools' files may stay.
    assert [p for p in video_tmp.iterdir() if p.name.startswith("veil-")] == [], "the job left files behind"
    assert video_worker.alive()


def _queued_job(engine: Engine, settings: Settings, kind: str, age_s: float) -> uuid.UUID:
    job_id = uuid.uuid4()
    storage = LocalStorage(settings.resolved_storage_root)
    src = settings.data_dir / f"fixture-{job_id}.bin"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(b"x")
    storage.put_file(input_key(str(job_id)), src)
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id=TENANT)
        session.add(Job(id=job_id, tenant_id=TENANT, kind=kind, input_key=input_key(str(job_id)),
                        max_attempts=settings.max_attempts, last_published_at=utcnow() - timedelta(seconds=age_s)))
        session.commit()
    return job_id


def test_reaper_republishes_each_kind_to_its_own_task_by_its_own_queue_depth(
        engine: Engine, settings: Settings) -> None:
    image = _queued_job(engine, settings, "image", 300)
    videos = [_queued_job(engine, settings, "video", age) for age in (300, 200)]
    storage = LocalStorage(settings.resolved_storage_root)
    sent: dict[str, list[uuid.UUID]] = {"image": [], "video": []}

    def to(kind: str):  # type: ignore[no-untyped-def]
        return lambda ids: sent[kind].extend(ids) or list(ids)

    # The image queue holds a message for its one job; the video queue is one short of two.
    report = reap_once(engine=engine, storage=storage, settings=settings, publish=to("image"),
                       queue_depth=lambda: 1, publish_video=to("video"), video_queue_depth=lambda: 1)
    assert sent == {"image": [], "video": [videos[0]]} and report.republished == 1
    # Without a video publisher, queued videos are never sent to the image task.
    sent["video"].clear()
    reap_once(engine=engine, storage=storage, settings=settings, publish=to("image"), queue_depth=lambda: 0)
    assert sent["image"] == [image] and sent["video"] == []


def test_veil_anonymize_takes_videos_by_content(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    src = tmp_path / "in" / "drive.bin"  # no telling extension: judged by content
    src.parent.mkdir()
    src.write_bytes(make_clip(frames=12))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["anonymize", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 done, 0 failed" in result.output
    assert [p.name for p in out.iterdir()] == ["drive.mp4"]
    frames, size, kinds = _read((out / "drive.mp4").read_bytes())
    assert frames == 12 and size == (320, 240) and "audio" in kinds


def zero_frame_mp4() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        out.start_encoding()
        out.mux(stream.encode(None))
    return buffer.getvalue()


def absurd_dimensions_mkv() -> bytes:
    """Raw video in Matroska, where the frame size lives only in the header: patched to 65535 x 65535."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("rawvideo", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 256, "yuv420p"
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(np.zeros((256, 320, 3), np.uint8), format="rgb24")
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    data = bytearray(buffer.getvalue())
    for element in (b"\xb0\x82\x01\x40", b"\xba\x82\x01\x00"):  # PixelWidth 320, PixelHeight 256
        at = data.find(element)
        assert at > 0
        data[at + 2 : at + 4] = b"\xff\xff"
    return bytes(data)
