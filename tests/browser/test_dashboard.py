"""The dashboard in a real headless Chromium, against the real API, PostgreSQL, Redis and worker process."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared.scopes import Scope
from shared.states import JobStatus
from shared.storage import input_key
from shared.tables import Job, SubjectRequest
from shared.timeutil import utcnow
from tests.browser.conftest import Dashboard, LiveService
from tests.images import astronaut_jpeg
from tests.integration.conftest import TENANT, WorkerProcess, make_key

pytestmark = [pytest.mark.integration, pytest.mark.browser]

OpenDashboard = Callable[[str], Dashboard]
WAIT_MS = 90_000  # how long to wait for the worker on a busy machine; not a speed requirement


def job_row(page: Page, table: str, job_id: str) -> Locator:
    return page.locator(f"#{table} tbody tr[data-id='{job_id}']")


def quick_clip(path: Path, *, width: int, height: int, frames: int, rate: int = 30) -> Path:
    """A faceless clip, encoded at x264's fastest preset: long enough to watch running, quick to make."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], axis=-1).astype(np.uint8)
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.roll(base, 8 * i, axis=1), format="rgb24")))
        out.mux(stream.encode(None))
    return path


def submit_on_page(page: Page, path: Path) -> str:
    page.get_by_label("Photo or video").set_input_files(str(path))
    with page.expect_response(lambda r: r.url.endswith("/v1/jobs") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Submit").click()
    assert posted.value.status == 202
    expect(page.locator("#notice")).to_contain_text("Submitted job")
    return str(posted.value.json()["id"])


def test_jobs_run_finish_and_show_their_anonymized_preview(
        open_dashboard: OpenDashboard, media_worker: WorkerProcess, engine: Engine, live: LiveService,
        tmp_path: Path) -> None:
    key = make_key(engine, TENANT, [Scope.jobs_write, Scope.jobs_read])
    board = open_dashboard(key)
    page = board.page
    # A key without the admin or subject-requests scope sees neither the requeue buttons nor the requests.
    expect(page.locator("#requests")).to_be_hidden()

    # A video long enough to be watched while it runs (faces only, so its length does not swing with the plate
    # detector's speed): submitted through the API, as an ingest client would. Progress, fps and ETA come from
    # the job row.
    clip = quick_clip(tmp_path / "drive.mp4", width=1280, height=720, frames=200)
    submitted = httpx.post(f"{live.url}/v1/jobs", headers={"Authorization": f"Bearer {key}"},
                           files={"file": ("drive.mp4", clip.read_bytes())}, data={"options": '{"targets": ["face"]}'},
                           timeout=60)
    assert submitted.status_code == 202, submitted.text
    video_id = submitted.json()["id"]
    row = job_row(page, "jobs-table", video_id)
    # One snapshot of the row taken while the page shows it running with a speed: the ETA is there with it.
    running = page.wait_for_function(
        """id => {
             const row = document.querySelector(`#jobs-table tr[data-id='${id}']`);
             const fps = row && row.cells[4].textContent;
             if (!row || row.dataset.status !== 'running' || !/^\\d+\\.\\d$/.test(fps)) return null;
             return [...row.cells].map(c => c.textContent);
           }""", arg=video_id, timeout=WAIT_MS, polling=200).json_value()
    assert re.fullmatch(r"\d+ % \(\d+/200\)", running[3].strip()), running  # progress, frames done of total
    assert re.fullmatch(r"\d+ s|\d+ min \d+ s", running[5]), running  # ETA
    expect(row).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)
    expect(row.locator("td").nth(3)).to_contain_text("100 % (200/200)")

    photo = tmp_path / "street.jpg"
    photo.write_bytes(astronaut_jpeg())
    photo_id = submit_on_page(page, photo)  # and a photo through the page's own form
    photo_row = job_row(page, "jobs-table", photo_id)
    expect(photo_row).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)

    # Open it from the keyboard: the preview is the anonymized output, fetched with the key, shown as a blob.
    photo_row.get_by_role("button", name=f"Open job {photo_id}").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#detail-title")).to_be_focused()
    # Its counts, as the job view gives them: faces and, beside them, plates.
    counted = httpx.get(f"{live.url}/v1/jobs/{photo_id}", headers={"Authorization": f"Bearer {key}"}).json()
    terms = page.locator("#detail-fields dt")
    expect(terms.filter(has_text="Plates found")).to_have_count(1)
    fields = page.locator("#detail-fields").evaluate(
        "dl => Object.fromEntries([...dl.querySelectorAll('dt')].map(t => [t.textContent, "
        "t.nextElementSibling.textContent]))")
    assert (fields["Faces found"], fields["Plates found"]) == (str(counted["faces_found"]),
                                                              str(counted["plates_found"]))
    image = page.locator("#preview-image")
    expect(image).to_be_visible(timeout=WAIT_MS)
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [512, 512]

    # Its detections are drawn on the canvas over it, at the boxes the API reports.
    canvas = page.locator("#preview-boxes")
    expect(canvas).to_have_attribute("data-drawn", re.compile(r"^[1-9]\d*$"))
    found = httpx.get(f"{live.url}/v1/jobs/{photo_id}/detections",
                      headers={"Authorization": f"Bearer {key}"}).json()["detections"]
    assert canvas.get_attribute("data-drawn") == str(len(found)) and found
    x1, y1, x2, y2 = found[0]["box"]
    edge, inside = canvas.evaluate(
        """(c, [x1, y1, x2, y2]) => {
             const ctx = c.getContext('2d');
             const px = (x, y) => Array.from(ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data);
             return [px(x1, (y1 + y2) / 2), px((x1 + x2) / 2, (y1 + y2) / 2)];
           }""", [x1, y1, x2, y2])
    assert edge == [255, 212, 0, 255], edge  # the outline's colour, on the box's left edge
    assert inside[3] == 0  # and nothing drawn over the middle of the face

    # The video's preview plays the anonymized output at its own size.
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#detail")).to_be_hidden()
    row.get_by_role("button", name=f"Open job {video_id}").click()
    video = page.locator("#preview-video")
    expect(video).to_have_attribute("src", re.compile(r"^blob:"), timeout=WAIT_MS)
    page.wait_for_function("() => document.getElementById('preview-video').videoWidth > 0")
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == [1280, 720]

    # Only results were fetched (never an original), the key never went into a URL, and nothing broke.
    assert not [u for u in board.requested if key in u]
    assert not [u for u in board.requested if "/v1/" in u and "original" in u]
    assert board.console_errors == []
    # No requeue for a key without the admin scope (and nothing here has failed anyway).
    expect(page.locator("button.requeue")).to_have_count(0)


def _finished_job(engine: Engine, live: LiveService, status: JobStatus, *, stored: bool) -> str:
    """A job row as the worker or reaper leaves a failure, its upload kept (a failed job's is, for days) or not."""
    job_id = uuid.uuid4()
    key = input_key(str(job_id))
    if stored:
        live.app.state.storage.put_stream(key, io.BytesIO(astronaut_jpeg()))
    now = utcnow()
    with Session(engine) as session:
        session.add(Job(id=job_id, tenant_id=TENANT, status=status.value, input_key=key if stored else None,
                        input_media_type="image/jpeg", attempts=3, max_attempts=3, started_at=now, finished_at=now,
                        error_code="internal_error" if status == JobStatus.failed else "attempts_exhausted",
                        error_message="The worker stopped.", input_expires_at=now + timedelta(days=7)))
        session.commit()
    return str(job_id)


def test_failed_and_dead_jobs_show_reasons_and_admins_requeue_them(
        open_dashboard: OpenDashboard, media_worker: WorkerProcess, engine: Engine, live: LiveService) -> None:
    failed = _finished_job(engine, live, JobStatus.failed, stored=True)
    dead = _finished_job(engine, live, JobStatus.dead, stored=False)

    reader = open_dashboard(make_key(engine, TENANT, [Scope.jobs_read, Scope.jobs_write])).page
    expect(job_row(reader, "attention-table", failed).locator("td").nth(2)).to_have_text("internal_error")
    expect(job_row(reader, "attention-table", dead).locator("td").nth(2)).to_have_text("attempts_exhausted")
    expect(reader.locator("button.requeue")).to_have_count(0)

    admin = open_dashboard(make_key(engine, TENANT, [Scope.admin])).page
    expect(admin.locator("#requests")).to_be_visible()
    # The status filter asks the API for one status at a time.
    jobs = admin.locator("#jobs-table tbody tr")
    expect(jobs).to_have_count(2)
    admin.get_by_label("Status").select_option("dead")
    expect(jobs).to_have_count(1)
    expect(job_row(admin, "jobs-table", dead)).to_have_count(1)
    admin.get_by_label("Status").select_option("failed")
    expect(jobs).to_have_count(1)
    expect(job_row(admin, "jobs-table", failed)).to_have_count(1)

    # A dead job whose upload is gone cannot run again; the failed one can.
    expect(job_row(admin, "attention-table", dead).locator("td").nth(6)).to_have_text("Upload deleted")
    requeue = admin.get_by_role("button", name=f"Requeue job {failed}")
    expect(requeue).to_be_visible()
    requeue.click()
    expect(admin.locator("#notice")).to_contain_text("was requeued")

    # The worker runs it again and it succeeds: it leaves the failed list and shows under "succeeded".
    expect(job_row(admin, "attention-table", failed)).to_have_count(0, timeout=WAIT_MS)
    admin.get_by_label("Status").select_option("succeeded")
    expect(job_row(admin, "jobs-table", failed)).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)
    expect(jobs).to_have_count(1)
    expect(job_row(admin, "attention-table", dead)).to_have_count(1)


def test_a_refused_key_shows_nothing_and_is_not_kept(browser: BrowserContext, live: LiveService) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{live.url}/dashboard")
        page.get_by_label("API key").fill("veil_not-a-key")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("not valid")
        for section in ("#jobs", "#attention", "#requests", "#upload"):
            expect(page.locator(section)).to_be_hidden()
        assert page.evaluate("() => sessionStorage.length") == 0
        assert "not-a-key" not in page.url
    finally:
        page.close()


def test_subject_requests_are_listed_with_deadlines_overdue_first(
        open_dashboard: OpenDashboard, engine: Engine) -> None:
    now = utcnow()
    # Rows as intake writes them; no message is published, so no worker touches them during the test.
    made = {
        "late-4": SubjectRequest(tenant_id=TENANT, type="erasure", status="in_progress", reference="late-4",
                                 received_at=now - timedelta(days=35), due_at=now - timedelta(days=4)),
        "fresh": SubjectRequest(tenant_id=TENANT, type="access", reference="fresh", received_at=now,
                                due_at=now + timedelta(days=30, hours=12)),
        "done": SubjectRequest(tenant_id=TENANT, type="erasure", status="completed", reference="done",
                               received_at=now - timedelta(days=50), due_at=now - timedelta(days=19),
                               completed_at=now - timedelta(days=45)),
        "late-9": SubjectRequest(tenant_id=TENANT, type="access", reference="late-9",
                                 received_at=now - timedelta(days=40), due_at=now - timedelta(days=9, hours=1)),
    }
    with Session(engine) as session:
        session.add_all(made.values())
        session.commit()

    page = open_dashboard(make_key(engine, TENANT, [Scope.subject_requests])).page
    # This key reads no jobs: the job sections stay hidden, the requests show.
    expect(page.locator("#jobs")).to_be_hidden()
    expect(page.locator("#upload")).to_be_hidden()
    rows = page.locator("#requests-table tbody tr")
    expect(rows).to_have_count(4)
    assert rows.evaluate_all("rs => rs.map(r => r.cells[1].textContent)") == ["late-9", "late-4", "fresh", "done"]
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.overdue)") == ["true", "true", "false", "false"]
    assert rows.evaluate_all("rs => rs.map(r => r.cells[6].textContent)") == [
        "Overdue by 9 days", "Overdue by 4 days", "30 days left", "Completed"]
