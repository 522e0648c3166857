// Train a model from the browser: good images from a folder (zipped here by qaZip), a zip, or the stored
// originals of a station's good results; optional labelled defects; start a job, follow its progress, read
// the evaluation and calibration report, publish the model as a new version. Refusals show the service's
// message, which names the file or field at fault.
(() => {
  const { $, call, headers, el, showError } = window.qa;
  const ACTIVE = ["queued", "running"];
  let me = null, job = null, timer = null;
  const num = (v, digits) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits === undefined ? 4 : digits));
  const pct = (v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(1) + " %");

  function folderEntries(input) {  // the picked folder's files, named relative to it; hidden files left out
    return [...input.files].map((f) => ({ name: (f.webkitRelativePath || f.name).split("/").slice(1).join("/") || f.name, file: f }))
      .filter((e) => !e.name.split("/").some((p) => p.startsWith(".")));
  }

  async function goodResultIds() {  // PASS results not disputed, and FAILs reviewed as false alarms, with an original
    const ids = [];
    for (const q of [{ verdict: "PASS" }, { verdict: "FAIL", review_state: "false_alarm" }]) {
      let cursor = null;
      for (let page = 0; page < 10; page++) {
        const res = await call("GET", "/api/v1/qa/queue?" + window.qa.query(Object.assign({ station: $("station").value, limit: 200, cursor }, q)));
        for (const r of res.items) if (r.images.includes("original") && ["unreviewed", "false_alarm"].includes(r.review_state)) ids.push(r.inspection_id);
        cursor = res.next_cursor;
        if (!cursor) break;
      }
    }
    return ids;
  }

  async function zipOf(input, what) {
    const entries = folderEntries(input);
    if (!entries.length) throw new Error("the " + what + " folder has no files");
    return window.qaZip.zip(entries, (done, total) => { $("progress-text").textContent = "zipping " + what + " " + done + "/" + total; });
  }

  async function buildForm() {
    const form = new FormData();
    form.set("name", $("name").value.trim());
    if ($("version").value.trim()) form.set("version", $("version").value.trim());
    form.set("preset", $("preset").value);
    form.set("target_frr", String(Number($("target").value) / 100));
    const source = document.querySelector("input[name=source]:checked").value;
    if (source === "folder") {
      if (!$("good-folder").files.length) throw new Error("pick a folder of good images");
      form.set("good", await zipOf($("good-folder"), "good images"), "good.zip");
    } else if (source === "zip") {
      const f = $("good-zip").files[0];
      if (!f) throw new Error("pick a zip of good images");
      form.set("good", f, f.name);
    } else {
      const ids = await goodResultIds();
      if (!ids.length) throw new Error("station " + $("station").value + " has no good results with a stored original image");
      form.set("result_ids", ids.join(","));
    }
    if ($("defects-folder").files.length) form.set("defects", await zipOf($("defects-folder"), "defect images"), "defects.zip");
    else if ($("defects-zip").files[0]) form.set("defects", $("defects-zip").files[0], $("defects-zip").files[0].name);
    return form;
  }

  async function startJob(e) {
    e.preventDefault();
    showError("");
    $("start").disabled = true;
    try {
      const form = await buildForm();
      $("progress-text").textContent = "uploading";
      const res = await fetch("/api/v1/training/jobs", { method: "POST", headers: headers(), body: form });
      const data = await res.json().catch(() => null);
      if (!res.ok) throw new Error((data && data.message) || "training: HTTP " + res.status);
      show(data);
      poll();
    } catch (err) { showError("Not started: " + err.message); $("progress-text").textContent = ""; }
    finally { $("start").disabled = !me.can_review; }
  }

  async function poll() {
    clearTimeout(timer);
    try { show(await call("GET", "/api/v1/training/jobs/" + job.id)); } catch (err) { showError(err.message); }
    if (job && ACTIVE.includes(job.state)) timer = setTimeout(poll, 1000);
  }

  function show(j) {
    job = j;
    $("job-card").hidden = false;
    $("job-id").textContent = j.name + " " + j.version + " (" + j.id + ")";
    $("job-state").textContent = j.state;
    document.body.dataset.jobState = j.state;
    $("progress").value = j.progress;
    $("progress-text").textContent = Math.round(100 * j.progress) + " %";
    $("stage").textContent = j.stage || "";
    $("job-summary").textContent = j.good_images + " good images for the model, " + j.held_out_images + " held out for calibration, " +
      j.defect_images + " defect images (" + j.masks + " masks); preset " + j.preset + ", target false-reject rate " + pct(j.target_frr) + "; started by " + j.created_by;
    $("job-error").textContent = j.error || "";
    $("log").textContent = j.log_tail.join("\n");
    $("cancel").hidden = !ACTIVE.includes(j.state) || !me.can_review;
    $("publish").hidden = j.state !== "succeeded" || !me.can_review;
    $("publish").disabled = !!j.published;
    if (j.published) $("publish-message").textContent = "Published " + j.published.name + " " + j.published.version + " (SHA-256 " + j.published.sha256.slice(0, 12) + "…) by " + j.published.published_by + ": it can now be assigned to stations.";
    $("report-card").hidden = !j.report;
    if (j.report) showReport(j.report);
  }

  function row(label, value) { return el("tr", {}, el("th", {}, label), el("td", {}, value)); }

  function showReport(r) {
    const g = r.good_scores, ev = r.evaluation;
    const rows = [row("threshold", num(r.threshold) + " (" + r.policy + ", target " + pct(r.target_frr) + ")"),
      row("false-reject rate", pct(r.chosen.false_reject_rate) + " of " + r.good_count + " held-out good images"),
      row("good scores", "mean " + num(g.mean) + ", std " + num(g.std) + ", p50 " + num(g.p50) + ", p99 " + num(g.p99) + ", max " + num(g.max))];
    if (r.defect_count) rows.push(row("escape rate", pct(r.chosen.escape_rate) + " of " + r.defect_count + " defect images"));
    if (r.f1_threshold) rows.push(row("F1-optimal threshold", num(r.f1_threshold.threshold) + " (F1 " + num(r.f1_threshold.f1, 3) + ")"));
    if (ev) rows.push(row("image AUROC", num(ev.image_auroc, 3)), row("pixel AUROC", num(ev.pixel_auroc, 3)), row("AUPRO", num(ev.aupro, 3)));
    $("report").replaceChildren(...rows);
    $("per-kind").replaceChildren(...(ev ? [el("tr", {}, ...["defect kind", "images", "image AUROC", "pixel AUROC"].map((h) => el("th", {}, h))),
      ...ev.per_kind.map((k) => el("tr", {}, el("td", {}, k.kind), el("td", {}, k.images), el("td", {}, num(k.image_auroc, 3)), el("td", {}, num(k.pixel_auroc, 3))))] : []));
    $("notes").textContent = [...r.notes, ...(ev ? ev.errors : [])].join(" · ");
  }

  async function publish() {
    $("publish-message").className = "";
    try { show(await call("POST", "/api/v1/training/jobs/" + job.id + "/publish", {})); $("publish-message").className = "ok"; }
    catch (err) { $("publish-message").className = "error"; $("publish-message").textContent = "Not published: " + err.message; }
  }

  async function cancel() {
    try { show(await call("DELETE", "/api/v1/training/jobs/" + job.id)); } catch (err) { showError(err.message); }
  }

  async function countResults() {
    $("results-count").textContent = "";
    try { $("results-count").textContent = (await goodResultIds()).length + " good results with their original image"; }
    catch (err) { $("results-count").textContent = err.message; }
  }

  async function start(who) {
    me = who;
    if (!me.can_review) {
      $("readonly").hidden = false;
      $("readonly").textContent = "Read only: your role (" + me.role + ") can follow training jobs but not start or publish one.";
      $("start").disabled = true;
    }
    const stations = await call("GET", "/api/v1/stations");
    $("station").replaceChildren(...stations.map((p) => new Option(p, p)));
    const jobs = await call("GET", "/api/v1/training/jobs");
    if (jobs.length) { show(jobs[0]); if (ACTIVE.includes(jobs[0].state)) poll(); }
    document.body.dataset.ready = "1";
  }

  $("train-form").addEventListener("submit", startJob);
  $("publish").addEventListener("click", publish);
  $("cancel").addEventListener("click", cancel);
  $("station").addEventListener("change", countResults);
  document.querySelectorAll("input[name=source]").forEach((r) => r.addEventListener("change", () => { if (r.value === "results") countResults(); }));
  window.qa.boot(start);
})();
