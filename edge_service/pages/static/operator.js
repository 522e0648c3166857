// Operator page: one station live. A FAIL stays on screen with the part's image and regions until it is
// acknowledged (button, Space or Enter) or for failLatchSeconds; an alarm banner after alarmFails FAILs in
// a row; shift counters from the service (reset at shift change); the live indicator from the feed's
// heartbeat; STALE when no result arrived for staleSeconds.
(() => {
  const { cfg, $, api, withLogin, openFeed, showLink, showError, pct } = window.Operator;
  let station = new URLSearchParams(location.hash.slice(1)).get("station") || "";
  const strip = [];
  let feed = null, lastResultAt = null;
  let latched = null, latchedAt = 0, newer = 0;
  let streak = 0, alarmAckedAt = 0;
  let counts = { good: 0, ng: 0 }, shiftStart = 0, nextShift = Infinity, partShown = null;

  function renderCounters() {
    $("good").textContent = counts.good; $("ng").textContent = counts.ng;
    const total = counts.good + counts.ng;
    $("yield").textContent = total ? pct(counts.good / total) : "—";
  }

  function renderAlarm() {
    const on = streak >= cfg.alarmFails && streak - alarmAckedAt >= cfg.alarmFails;
    $("alarm").hidden = !on; $("alarm-count").textContent = streak;
    document.body.classList.toggle("alarming", on);
  }

  function renderVerdict() {
    const r = latched || strip[0];
    const v = $("verdict");
    v.classList.remove("pass", "fail", "none");
    if (!r) { v.classList.add("none"); $("verdict-text").textContent = "—"; $("part").hidden = true; return; }
    v.classList.add(r.verdict === "FAIL" ? "fail" : "pass");
    $("verdict-text").textContent = r.verdict;
    const part = r.part_id ? "part " + r.part_id + " · " : "";
    $("verdict-detail").textContent = part + "score " + r.score.toFixed(3) + " / " + r.threshold.toFixed(3);
    $("latch").hidden = !latched;
    if (latched) $("latch-note").textContent = newer ? newer + " part(s) inspected since" : "held until acknowledged";
    v.classList.toggle("has-part", r.verdict === "FAIL");
    if (r.verdict === "FAIL") showPart(r); else { $("part").hidden = true; partShown = null; }
  }

  function drawRegions(r) {
    const svg = $("part-regions");
    svg.setAttribute("viewBox", "0 0 " + r.image_width + " " + r.image_height);
    const stroke = Math.max(2, r.image_width / 120);
    svg.innerHTML = (r.regions || []).map((g) => '<rect x="' + g.x + '" y="' + g.y + '" width="' + g.width +
      '" height="' + g.height + '" stroke-width="' + stroke + '"></rect>').join("");
  }

  async function showPart(r) {
    if (partShown === r.inspection_id) return;
    partShown = r.inspection_id;
    $("part").hidden = false; $("part-frame").hidden = true; drawRegions(r);
    $("part-note").textContent = (r.regions || []).length + " region(s); image loading…";
    for (let attempt = 0; attempt < 30 && partShown === r.inspection_id; attempt++) {
      for (const kind of ["original", "overlay"]) {  // images follow their result: retry a while
        const res = await fetch("/api/v1/results/" + r.inspection_id + "/images/" + kind, { credentials: "same-origin" });
        if (res.ok && partShown === r.inspection_id) {
          const img = $("part-img");
          if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
          img.src = URL.createObjectURL(await res.blob()); img.dataset.kind = kind; img.dataset.id = r.inspection_id;
          $("part-frame").hidden = false;
          $("part-note").textContent = (r.regions || []).length + " region(s) · " + kind + " image";
          return;
        }
      }
      await new Promise((ok) => setTimeout(ok, 500));
    }
    if (partShown === r.inspection_id) $("part-note").textContent = "no image stored for this part";
  }

  function renderStrip() {
    $("strip").replaceChildren(...strip.map((r) => {
      const li = document.createElement("li");
      li.className = r.verdict === "FAIL" ? "fail" : "pass";
      li.textContent = r.verdict === "FAIL" ? "✗" : "✓";
      li.title = (r.part_id || r.inspection_id) + " " + r.verdict + " " + r.score.toFixed(3);
      return li;
    }));
  }

  function addResult(r, arrivedAt, live) {
    if (strip.some((x) => x.inspection_id === r.inspection_id)) return;
    strip.unshift(r);
    strip.sort((a, b) => Date.parse(b.inspected_at) - Date.parse(a.inspected_at));
    strip.length = Math.min(strip.length, 20);
    if (live) {
      if (Date.parse(r.inspected_at) >= shiftStart) counts[r.verdict === "FAIL" ? "ng" : "good"] += 1;
      if (r.verdict === "FAIL") streak += 1; else { streak = 0; alarmAckedAt = 0; }
    }
    if (r.verdict === "FAIL" && live) { latched = r; latchedAt = Date.now(); newer = 0; }
    else if (latched && live) newer += 1;
    lastResultAt = Math.max(lastResultAt || 0, arrivedAt);
    renderStrip(); renderVerdict(); renderCounters(); renderAlarm(); updateStale();
  }

  function acknowledge() {
    latched = null; alarmAckedAt = streak;
    renderVerdict(); renderAlarm();
  }

  function updateStale() {
    const age = lastResultAt === null ? Infinity : (Date.now() - lastResultAt) / 1000;
    const down = !(feed && feed.live());
    const stale = down || age > cfg.staleSeconds;
    $("stale").hidden = !stale;
    $("stale-age").textContent = lastResultAt === null ? "—" : Math.floor(age);
    $("stale").firstChild.textContent = down ? "STALE: live feed down; last result " : "STALE: no result for ";
    $("verdict").classList.toggle("is-stale", stale);
    if (latched && cfg.failLatchSeconds > 0 && Date.now() - latchedAt > cfg.failLatchSeconds * 1000) acknowledgeLatchOnly();
    if (Date.now() >= nextShift) { nextShift = Infinity; refreshCounters(); }
  }

  function acknowledgeLatchOnly() { latched = null; renderVerdict(); }

  async function refreshCounters() {
    if (!station) return;
    try {
      const o = await api("/api/v1/operator/overview?station=" + encodeURIComponent(station));
      const s = o.stations.find((x) => x.station_path === station);
      if (!s) return;
      counts = { good: s.good, ng: s.ng }; streak = s.fail_streak;
      if (streak < alarmAckedAt) alarmAckedAt = 0;
      shiftStart = Date.parse(o.shift_start); nextShift = Date.parse(o.next_shift);
      $("shift").textContent = "Shift since " + new Date(shiftStart).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      renderCounters(); renderAlarm();
    } catch (e) { showError(e.message); }
  }

  async function loadRecent() {
    const page = await api("/api/v1/results?limit=20&station=" + encodeURIComponent(station));
    for (const r of page.items.slice().reverse()) addResult(r, Date.parse(r.received_at), false);
    if (strip[0] && strip[0].verdict === "FAIL" && !latched) { latched = strip[0]; latchedAt = Date.now(); newer = 0; }
    renderStrip(); renderVerdict();
  }

  function follow() {
    if (feed) feed.close();
    strip.length = 0; latched = null; lastResultAt = null; partShown = null;
    feed = openFeed(station, {
      onEvent: (r) => { if (r.station_path === station) addResult(r, Date.now(), true); },
      onConnected: () => { showError(""); refreshCounters().then(loadRecent).catch((e) => showError(e.message)); },
      onState: (live, why) => { showLink(live, why); updateStale(); if (!live && why) showError(why); },
    });
  }

  async function start() {
    const stations = await api("/api/v1/stations");
    const sel = $("station");
    sel.replaceChildren(...stations.map((p) => new Option(p, p)));
    if (!station || !stations.includes(station)) station = stations[0] || "";
    sel.value = station;
    if (!station) { showError("no stations registered yet"); return; }
    follow();
  }

  $("station").addEventListener("change", (e) => {
    station = e.target.value; location.hash = "station=" + encodeURIComponent(station); follow();
  });
  $("ack").addEventListener("click", acknowledge);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key === " " || e.key === "Enter") { e.preventDefault(); acknowledge(); }
  });
  if (!cfg.needsToken) $("logout").hidden = true;
  setInterval(updateStale, 250);
  setInterval(refreshCounters, 15000);
  updateStale();
  withLogin(start);
})();
