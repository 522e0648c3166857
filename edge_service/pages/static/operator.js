// Operator page: one station live. Reads the SSE stream with fetch() so the token goes in the
// Authorization header, never in a URL. Shows STALE whenever no result has arrived for staleSeconds
// or the stream is down.
(() => {
  const cfg = window.INSPECTION || { staleSeconds: 10, needsToken: true };
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("inspectionToken") || "";
  let station = new URLSearchParams(location.hash.slice(1)).get("station") || "";
  let lastResultAt = null; // browser time (ms) the newest result arrived, or its server time on load
  let streamUp = false;
  let abort = null;
  const strip = [];

  function headers() { return token ? { Authorization: "Bearer " + token } : {}; }
  function showError(text) { $("error").textContent = text || ""; }
  function setLink(state, text) { $("link").dataset.state = state; $("link").textContent = text; }

  async function api(path) {
    const res = await fetch(path, { headers: headers() });
    if (res.status === 401 || res.status === 403) { askToken(); throw new Error("token refused (" + res.status + ")"); }
    if (!res.ok) throw new Error(path.split("?")[0] + ": HTTP " + res.status);
    return res.json();
  }

  function askToken() {
    if (!cfg.needsToken) return;
    $("token-form").hidden = false;
  }

  function showVerdict(r) {
    const v = $("verdict");
    v.classList.remove("pass", "fail", "none");
    v.classList.add(r.verdict === "FAIL" ? "fail" : "pass");
    $("verdict-text").textContent = r.verdict;
    const part = r.part_id ? "part " + r.part_id + " · " : "";
    $("verdict-detail").textContent = part + "score " + r.score.toFixed(3) + " / " + r.threshold.toFixed(3);
  }

  function renderStrip() {
    const ol = $("strip");
    ol.replaceChildren(...strip.map((r) => {
      const li = document.createElement("li");
      li.className = r.verdict === "FAIL" ? "fail" : "pass";
      li.textContent = r.verdict === "FAIL" ? "✗" : "✓";
      li.title = (r.part_id || r.inspection_id) + " " + r.verdict + " " + r.score.toFixed(3);
      return li;
    }));
  }

  function addResult(r, arrivedAt) {
    if (strip.some((x) => x.inspection_id === r.inspection_id)) return;
    strip.unshift(r);
    strip.length = Math.min(strip.length, 20);
    renderStrip();
    showVerdict(strip[0]);
    lastResultAt = Math.max(lastResultAt || 0, arrivedAt);
    updateStale();
  }

  function updateStale() {
    const age = lastResultAt === null ? Infinity : (Date.now() - lastResultAt) / 1000;
    const stale = !streamUp || age > cfg.staleSeconds;
    $("stale").hidden = !stale;
    $("stale-age").textContent = lastResultAt === null ? "—" : Math.floor(age);
    if (!streamUp) $("stale").firstChild.textContent = "STALE: live feed down; last result ";
    else $("stale").firstChild.textContent = "STALE: no result for ";
    $("verdict").classList.toggle("is-stale", stale);
  }

  async function refreshYield() {
    if (!station) return;
    try {
      const since = new Date(Date.now() - 3600e3).toISOString();
      const s = await api("/api/v1/stats?station=" + encodeURIComponent(station) + "&since=" + encodeURIComponent(since));
      $("yield").textContent = s.yield === null ? "—" : (100 * s.yield).toFixed(1) + " %";
      $("yield-detail").textContent = s.total + " parts, " + s.fail + " failed";
    } catch (e) { showError(e.message); }
  }

  async function loadRecent() {
    strip.length = 0;
    lastResultAt = null;
    const page = await api("/api/v1/results?limit=20&station=" + encodeURIComponent(station));
    for (const r of page.items.slice().reverse()) addResult(r, Date.parse(r.received_at));
    if (!page.items.length) { renderStrip(); $("verdict").className = "verdict none"; $("verdict-text").textContent = "—"; }
  }

  async function stream() {
    if (abort) abort.abort();
    abort = new AbortController();
    const mine = abort;
    let backoff = 1000;
    while (!mine.signal.aborted) {
      try {
        setLink("connecting", "connecting…");
        const res = await fetch("/api/v1/stream?station=" + encodeURIComponent(station), { headers: headers(), signal: mine.signal });
        if (res.status === 401 || res.status === 403) { askToken(); throw new Error("token refused (" + res.status + ")"); }
        if (!res.ok || !res.body) throw new Error("live feed: HTTP " + res.status);
        streamUp = true; backoff = 1000; setLink("live", "● live"); showError("");
        await loadRecent(); refreshYield();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (block.includes("event: result") && data) { addResult(JSON.parse(data), Date.now()); refreshYieldSoon(); }
          }
        }
        throw new Error("live feed closed");
      } catch (e) {
        streamUp = false; updateStale();
        if (mine.signal.aborted) return;
        setLink("error", "reconnecting…"); showError(e.message);
        await new Promise((ok) => setTimeout(ok, backoff));
        backoff = Math.min(backoff * 2, 15000);
      }
    }
  }

  let yieldTimer = null;
  function refreshYieldSoon() { if (!yieldTimer) yieldTimer = setTimeout(() => { yieldTimer = null; refreshYield(); }, 1000); }

  async function start() {
    try {
      const stations = await api("/api/v1/stations");
      const sel = $("station");
      sel.replaceChildren(...stations.map((p) => new Option(p, p)));
      if (!station || !stations.includes(station)) station = stations[0] || "";
      sel.value = station;
      if (!station) { showError("no stations registered yet"); return; }
      $("token-form").hidden = true;
      stream();
    } catch (e) { showError(e.message); }
  }

  $("station").addEventListener("change", (e) => {
    station = e.target.value; location.hash = "station=" + encodeURIComponent(station); stream();
  });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault(); token = $("token").value.trim(); sessionStorage.setItem("inspectionToken", token); start();
  });
  setInterval(updateStale, 500);
  setInterval(refreshYield, 30000);
  updateStale();
  if (cfg.needsToken && !token) askToken(); else start();
})();
