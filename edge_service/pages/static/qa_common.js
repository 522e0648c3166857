// Shared by the QA pages: the token (sessionStorage, sent only in the Authorization header), API calls
// that turn refusals into the service's message, who is signed in, and small helpers.
window.qa = (() => {
  const cfg = window.QA || { needsToken: true, shiftStartHours: [6, 14, 22] };
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("inspectionToken") || "";

  function headers(extra) { return Object.assign(token ? { Authorization: "Bearer " + token } : {}, extra || {}); }

  async function call(method, path, body) {
    const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(path, init);
    if (res.status === 401) askToken();
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) throw new Error((data && data.message) || path.split("?")[0] + ": HTTP " + res.status);
    return data;
  }

  async function imageUrl(id, kind) {  // <img> cannot send a header: fetch the bytes, show a blob URL
    const res = await fetch("/api/v1/results/" + id + "/images/" + kind, { headers: headers() });
    if (!res.ok) return null;
    return URL.createObjectURL(await res.blob());
  }

  function askToken() { if (cfg.needsToken) $("token-form").hidden = false; }

  function showError(text) { const e = $("error"); if (e) e.textContent = text || ""; }

  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") n.className = v; else if (k.startsWith("data-")) n.setAttribute(k, v); else n[k] = v;
    }
    for (const c of children) n.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return n;
  }

  function fmtTime(iso) { return new Date(iso).toLocaleString(); }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    return q.toString();
  }

  // Start the page once a token is known; the page's start() gets who is signed in. prefetch() (optional)
  // runs at the same time as the who-am-I call, so the page's first data does not wait for it.
  function boot(start, prefetch) {
    $("token-form").addEventListener("submit", async (e) => {
      e.preventDefault(); token = $("token").value.trim(); sessionStorage.setItem("inspectionToken", token);
      await run();
    });
    async function run() {
      try {
        const early = prefetch ? prefetch() : Promise.resolve();
        const me = await call("GET", "/api/v1/qa/whoami");
        await early;
        $("token-form").hidden = true;
        $("me").textContent = me.name + " (" + me.role + ")";
        await start(me);
      } catch (e) { showError(e.message); }
    }
    if (cfg.needsToken && !token) askToken(); else run();
  }

  return { cfg, $, call, headers, imageUrl, showError, el, fmtTime, query, boot };
})();
