// The Veil dashboard: plain JavaScript over the public /v1 API, polled, with the key in sessionStorage only.
// Every value from the API is written as text nodes (never parsed as HTML), and the page loads nothing from
// elsewhere: the Content-Security-Policy of /dashboard allows only this origin and blob: previews.

const KEY_STORE = "veil.apiKey";
// Every request counts against the tenant's rate limit, which its ingest clients share: the job list is polled
// every 2 s, what changes slowly less often (about 45 requests a minute for an open, visible tab).
const POLL_MS = 2000;
const ATTENTION_EVERY = 5; // failed and dead jobs: every 10 s
const REQUESTS_EVERY = 15; // subject requests: every 30 s
const OPEN_REQUEST = new Set(["received", "in_progress", "sweeping"]);
const DAY_MS = 86400000;

const $ = (id) => document.getElementById(id);

const state = {
  key: null,
  me: null,
  timer: null,
  polls: 0,
  backoffUntil: 0,
  openJob: null, // id of the job in the detail panel
  detailSettled: false, // the open job is finished and shown in full: no need to fetch it again
  previewFor: null, // id of the job whose output is on show
  previewUrl: null,
  polling: false, // a poll is waiting for its answers
  pollAgain: null, // "jobs" or "everything": a poll asked for meanwhile
  opener: null, // the button that opened the detail panel, to return focus to
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.title) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || String(status);
  }
}

function notice(text) {
  $("notice").textContent = text;
}

function describe(error) {
  return error instanceof ApiError ? `${error.message} (${error.code})` : "The API could not be reached.";
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("Authorization", `Bearer ${state.key}`);
  const response = await fetch(path, { ...options, headers, cache: "no-store", credentials: "omit" });
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (response.status === 401) {
      signOut("The key was refused: it is not valid, or was revoked or has expired.");
    } else if (response.status === 429) {
      const wait = Number(response.headers.get("Retry-After")) || 5;
      state.backoffUntil = Date.now() + wait * 1000;
    }
    throw new ApiError(response.status, body);
  }
  return response;
}

async function getJson(path) {
  return (await api(path)).json();
}

// ---- formatting -------------------------------------------------------------------------------------------

function when(iso) {
  if (!iso) return document.createTextNode("—");
  const node = document.createElement("time");
  node.dateTime = iso;
  node.textContent = new Date(iso).toLocaleString();
  return node;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function short(id) {
  return id.slice(0, 8);
}

function setCell(cell, content) {
  // Replace a cell's content only when it changed, so screen readers and focus are not disturbed.
  const text = content instanceof Node ? content.textContent : String(content);
  if (cell.dataset.text === text) return;
  cell.dataset.text = text;
  cell.replaceChildren(content instanceof Node ? content : document.createTextNode(text));
}

// Rows keyed by id: existing rows are updated in place and reordered, never rebuilt, so a focused button stays.
function renderRows(tbody, items, build, update) {
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.id, row]));
  items.forEach((item, index) => {
    let row = existing.get(item.id);
    if (row) {
      existing.delete(item.id);
    } else {
      row = build(item);
      row.dataset.id = item.id;
    }
    update(row, item);
    if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] || null);
  });
  existing.forEach((row) => row.remove());
}

function newRow(cells) {
  const row = document.createElement("tr");
  for (let i = 0; i < cells; i += 1) row.insertCell();
  return row;
}

function openButton(job) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.textContent = short(job.id);
  button.setAttribute("aria-label", `Open job ${job.id}`);
  button.addEventListener("click", () => openJob(job.id, button));
  return button;
}

// ---- jobs -------------------------------------------------------------------------------------------------

function speed(job) {
  return job.video && job.video.fps !== null ? job.video.fps.toFixed(1) : "—";
}

function eta(job) {
  if (job.status !== "running") return "—";
  return job.video ? duration(job.video.eta_seconds) : "—";
}

function buildJobRow(job) {
  const row = newRow(9);
  row.cells[0].append(openButton(job));
  const bar = document.createElement("progress");
  bar.max = 1;
  const label = document.createElement("span");
  row.cells[3].append(bar, " ", label);
  return row;
}

function updateJobRow(row, job) {
  row.dataset.status = job.status;
  setCell(row.cells[1], job.kind);
  setCell(row.cells[2], job.status);
  row.cells[2].className = `status status-${job.status}`;
  const [bar, , label] = row.cells[3].childNodes;
  bar.value = job.progress;
  const percent = `${Math.round(job.progress * 100)} %`;
  bar.setAttribute("aria-label", `Progress of job ${short(job.id)}: ${percent}`);
  label.textContent = job.video ? `${percent} (${job.video.frames_done}/${job.video.frames_total})` : percent;
  setCell(row.cells[4], speed(job));
  setCell(row.cells[5], eta(job));
  setCell(row.cells[6], job.attempts);
  setCell(row.cells[7], job.error ? job.error.code : "");
  setCell(row.cells[8], when(job.created_at));
}

async function refreshJobs() {
  const filter = $("status-filter").value;
  const query = new URLSearchParams({ limit: "50" });
  if (filter) query.set("status", filter);
  const page = await getJson(`/v1/jobs?${query}`);
  if (filter !== $("status-filter").value) return; // the filter changed while we waited
  renderRows($("jobs-table").tBodies[0], page.items, buildJobRow, updateJobRow);
  $("jobs-empty").hidden = page.items.length > 0;
  $("jobs-updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

// ---- failed and dead jobs ---------------------------------------------------------------------------------

function buildAttentionRow(job) {
  const row = newRow(7);
  row.cells[0].append(openButton(job));
  return row;
}

function updateAttentionRow(row, job) {
  row.dataset.status = job.status;
  setCell(row.cells[1], job.status);
  setCell(row.cells[2], job.error ? job.error.code : "");
  setCell(row.cells[3], job.error && job.error.message ? job.error.message : "");
  setCell(row.cells[4], job.attempts);
  setCell(row.cells[5], when(job.finished_at));
  const action = row.cells[6];
  const wanted = !state.me.can.admin ? "none" : job.input_retained ? "requeue" : "gone";
  if (action.dataset.state === wanted) return;
  action.dataset.state = wanted;
  action.replaceChildren();
  if (wanted === "requeue") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "requeue";
    button.textContent = "Requeue";
    button.setAttribute("aria-label", `Requeue job ${job.id}`);
    button.addEventListener("click", () => requeue(job.id, button));
    action.append(button);
  } else if (wanted === "gone") {
    action.textContent = "Upload deleted";
  }
}

async function refreshAttention() {
  const [failed, dead] = await Promise.all([
    getJson("/v1/jobs?status=failed&limit=50"),
    getJson("/v1/jobs?status=dead&limit=50"),
  ]);
  const items = [...failed.items, ...dead.items].sort((a, b) =>
    (b.finished_at || b.updated_at).localeCompare(a.finished_at || a.updated_at));
  renderRows($("attention-table").tBodies[0], items, buildAttentionRow, updateAttentionRow);
  $("attention-empty").hidden = items.length > 0;
}

async function requeue(jobId, button) {
  button.disabled = true;
  try {
    await api(`/v1/jobs/${jobId}/requeue`, { method: "POST" });
    notice(`Job ${short(jobId)} was requeued.`);
    if (state.openJob === jobId) state.detailSettled = false;
  } catch (error) {
    button.disabled = false;
    notice(`Job ${short(jobId)} was not requeued: ${describe(error)}`);
  }
  poll(true);
}

// ---- one job: fields and preview --------------------------------------------------------------------------

function field(list, name, value) {
  const term = document.createElement("dt");
  term.textContent = name;
  const detail = document.createElement("dd");
  detail.append(value instanceof Node ? value : document.createTextNode(String(value)));
  list.append(term, detail);
}

function renderFields(job) {
  const list = document.createElement("dl");
  list.id = "detail-fields";
  field(list, "Job", job.id);
  field(list, "Status", job.status);
  field(list, "Kind", job.kind);
  field(list, "Progress", `${Math.round(job.progress * 100)} %`);
  if (job.video) {
    field(list, "Frames", `${job.video.frames_done} of ${job.video.frames_total}`);
    field(list, "fps", speed(job));
    field(list, "ETA", eta(job));
  }
  field(list, "Attempts", job.attempts);
  field(list, "Created", when(job.created_at));
  field(list, "Started", when(job.started_at));
  field(list, "Finished", when(job.finished_at));
  if (job.faces_found !== null) field(list, "Faces found", job.faces_found);
  if (job.plates_found !== null) field(list, "Plates found", job.plates_found);
  if (job.error) field(list, "Reason", `${job.error.code}${job.error.message ? `: ${job.error.message}` : ""}`);
  if (job.options && job.options.mask) field(list, "Mask", job.options.mask);
  $("detail-fields").replaceWith(list);
}

function clearPreview() {
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = null;
  state.previewFor = null;
  const image = $("preview-image");
  const video = $("preview-video");
  image.removeAttribute("src");
  image.hidden = true;
  video.removeAttribute("src");
  video.hidden = true;
  $("preview-frame").hidden = true;
  const canvas = $("preview-boxes");
  canvas.width = 0;
  canvas.height = 0;
  delete canvas.dataset.drawn;
  $("preview-note").textContent = "";
}

function drawDetections(image, detections) {
  const canvas = $("preview-boxes");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#ffd400";
  context.lineWidth = Math.max(2, Math.round(canvas.width / 400));
  for (const detection of detections) {
    const [x1, y1, x2, y2] = detection.box;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  }
  canvas.dataset.drawn = String(detections.length);
  const n = detections.length;
  canvas.setAttribute("aria-label", `${n} detection${n === 1 ? "" : "s"} outlined on the anonymized output`);
}

async function showPreview(job) {
  // Only the anonymized output is ever fetched: the API has no route to an original.
  state.previewFor = job.id;
  let blob;
  let found;
  try {
    const [result, detections] = await Promise.all([api(job.links.result), getJson(job.links.detections)]);
    blob = await result.blob();
    found = detections;
  } catch (error) {
    state.previewFor = null; // try again on the next poll
    throw error;
  }
  if (state.openJob !== job.id) return;
  state.previewUrl = URL.createObjectURL(blob);
  $("preview-frame").hidden = false;
  if (job.kind === "image") {
    const image = $("preview-image");
    image.src = state.previewUrl;
    image.hidden = false;
    await image.decode();
    if (state.openJob !== job.id) return;
    drawDetections(image, found.detections);
    const n = found.detections.length;
    $("preview-note").textContent = `Anonymized output, ${n} detection${n === 1 ? "" : "s"} outlined.`;
  } else {
    const video = $("preview-video");
    video.src = state.previewUrl;
    video.hidden = false;
    $("preview-note").textContent = "Anonymized output.";
  }
}

async function refreshDetail() {
  const jobId = state.openJob;
  const job = await getJson(`/v1/jobs/${jobId}`);
  if (state.openJob !== jobId) return;
  $("detail-title").textContent = `Job ${short(job.id)}`;
  renderFields(job);
  if (job.status === "succeeded" && state.previewFor !== job.id) {
    await showPreview(job);
  } else if (job.status !== "succeeded" && state.previewFor === null) {
    $("preview-note").textContent = job.status === "queued" || job.status === "running"
      ? "The preview appears once the job has succeeded." : "This job has no anonymized output to show.";
  }
  state.detailSettled = ["succeeded", "failed", "dead", "cancelled"].includes(job.status) && state.openJob === jobId;
}

async function openJob(jobId, opener) {
  clearPreview();
  state.openJob = jobId;
  state.detailSettled = false;
  state.opener = opener || null;
  $("detail").hidden = false;
  $("detail-title").textContent = `Job ${short(jobId)}`;
  $("detail-title").focus();
  try {
    await refreshDetail();
  } catch (error) {
    if (state.key) notice(`Job ${short(jobId)}: ${describe(error)}`);
  }
}

function closeDetail() {
  clearPreview();
  state.openJob = null;
  $("detail").hidden = true;
  if (state.opener && state.opener.isConnected) state.opener.focus();
  state.opener = null;
}

// ---- subject requests -------------------------------------------------------------------------------------

function deadline(request, overdue) {
  if (!OPEN_REQUEST.has(request.status)) return request.status === "completed" ? "Completed" : "—";
  const days = (new Date(request.due_at).getTime() - Date.now()) / DAY_MS;
  if (overdue) return `Overdue by ${Math.max(1, Math.floor(-days))} days`;
  return `${Math.max(0, Math.floor(days))} days left`;
}

function buildRequestRow() {
  return newRow(7);
}

function updateRequestRow(row, request) {
  row.dataset.overdue = String(request.overdue);
  row.classList.toggle("overdue", request.overdue);
  setCell(row.cells[0], short(request.id));
  setCell(row.cells[1], request.reference || "");
  setCell(row.cells[2], request.type);
  setCell(row.cells[3], request.status);
  setCell(row.cells[4], when(request.received_at));
  setCell(row.cells[5], when(request.due_at));
  setCell(row.cells[6], deadline(request, request.overdue));
}

async function refreshRequests() {
  // The server decides what is overdue (its clock, its extended deadlines); the rest follow, open ones by due date.
  const [overdue, all] = await Promise.all([
    getJson("/v1/subject-requests?state=overdue&limit=500"),
    getJson("/v1/subject-requests?state=all&limit=500"),
  ]);
  const late = new Set(overdue.items.map((r) => r.id));
  const rest = all.items.filter((r) => !late.has(r.id));
  const open = rest.filter((r) => OPEN_REQUEST.has(r.status)).sort((a, b) => a.due_at.localeCompare(b.due_at));
  const closed = rest.filter((r) => !OPEN_REQUEST.has(r.status));
  const items = [
    ...overdue.items.map((r) => ({ ...r, overdue: true })),
    ...[...open, ...closed].map((r) => ({ ...r, overdue: false })),
  ];
  renderRows($("requests-table").tBodies[0], items, buildRequestRow, updateRequestRow);
  $("requests-empty").hidden = items.length > 0;
}

// ---- polling, sign-in -------------------------------------------------------------------------------------

async function poll(everything = false) {
  clearTimeout(state.timer);
  if (state.polling) {
    // One poll at a time, so an older answer never paints over a newer one; ask again once this one is done.
    state.pollAgain = state.pollAgain || (everything ? "everything" : "jobs");
    return;
  }
  if (!state.key) return;
  if (!document.hidden && Date.now() >= state.backoffUntil) {
    const can = state.me.can;
    const due = (every) => everything || state.polls % every === 0;
    const work = [];
    if (can.read_jobs) work.push(refreshJobs());
    if (can.read_jobs && due(ATTENTION_EVERY)) work.push(refreshAttention());
    if (can.read_jobs && state.openJob && !state.detailSettled) work.push(refreshDetail());
    if (can.subject_requests && due(REQUESTS_EVERY)) work.push(refreshRequests());
    state.polls += 1;
    state.polling = true;
    const failures = (await Promise.allSettled(work)).filter((r) => r.status === "rejected");
    state.polling = false;
    if (failures.length && state.key) notice(describe(failures[0].reason));
  }
  const again = state.pollAgain;
  state.pollAgain = null;
  if (again) poll(again === "everything");
  else if (state.key) state.timer = setTimeout(poll, POLL_MS);
}

function showSections(can) {
  $("upload").hidden = !can.write_jobs;
  $("jobs").hidden = !can.read_jobs;
  $("attention").hidden = !can.read_jobs;
  $("requests").hidden = !can.subject_requests;
}

async function signIn(candidate) {
  state.key = candidate;
  try {
    state.me = await getJson("/v1/me");
  } catch (error) {
    if (state.key) signOut(`The key was not accepted: ${describe(error)}`);
    return;
  }
  sessionStorage.setItem(KEY_STORE, candidate);
  $("key-form").hidden = true;
  $("api-key").value = "";
  $("who").hidden = false;
  const me = state.me;
  $("who-text").textContent = `Tenant ${me.tenant_id}, key ${me.key_id} (${me.scopes.join(", ")})`;
  showSections(me.can);
  if (!me.can.read_jobs && !me.can.subject_requests) notice("This key can neither read jobs nor subject requests.");
  else notice("");
  state.polls = 0;
  poll();
}

function signOut(message) {
  clearTimeout(state.timer);
  state.key = null;
  state.me = null;
  sessionStorage.removeItem(KEY_STORE);
  closeDetail();
  showSections({ read_jobs: false, write_jobs: false, subject_requests: false });
  for (const id of ["jobs-table", "attention-table", "requests-table"]) $(id).tBodies[0].replaceChildren();
  $("who").hidden = true;
  $("key-form").hidden = false;
  notice(message);
  $("api-key").focus();
}

async function upload(event) {
  event.preventDefault();
  const input = $("upload-file");
  if (!input.files.length) return;
  const body = new FormData();
  body.append("file", input.files[0]);
  const button = event.submitter || $("upload-form").querySelector("button");
  button.disabled = true;
  try {
    const job = await (await api("/v1/jobs", { method: "POST", body })).json();
    notice(`Submitted job ${short(job.id)}.`);
    $("upload-form").reset();
  } catch (error) {
    notice(`The file was not accepted: ${describe(error)}`);
  } finally {
    button.disabled = false;
  }
  poll();
}

function start() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const candidate = $("api-key").value.trim();
    if (candidate) signIn(candidate);
  });
  $("forget-key").addEventListener("click", () => signOut("The key was forgotten."));
  $("upload-form").addEventListener("submit", upload);
  $("status-filter").addEventListener("change", () => poll());
  $("detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.openJob) closeDetail();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll(true);
  });
  const kept = sessionStorage.getItem(KEY_STORE);
  if (kept) signIn(kept);
}

start();
