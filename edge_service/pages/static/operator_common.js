// Shared by the operator pages: kiosk login (the token is posted once to /kiosk/login and becomes an
// HttpOnly session cookie; it never goes in a URL or in browser storage), reading the API with that
// cookie, and the live feed with a heartbeat: the feed counts as live only while bytes keep arriving.
(() => {
  const cfg = window.INSPECTION || { staleSeconds: 10, needsToken: true, heartbeatSeconds: 2, feedTimeoutSeconds: 5 };
  const $ = (id) => document.getElementById(id);

  class NeedLogin extends Error {}

  async function api(path) {
    const res = await fetch(path, { credentials: "same-origin" });
    if (res.status === 401) throw new NeedLogin("log in with an operator token (" + (await res.text()).slice(0, 120) + ")");
    if (!res.ok) throw new Error(path.split("?")[0] + ": HTTP " + res.status);
    return res.json();
  }

  function showError(text) { const e = $("error"); if (e) e.textContent = text || ""; }

  // run start(); when it needs a login, show the form and run it again after a successful login
  function withLogin(start) {
    const form = $("token-form");
    async function attempt() {
      try { await start(); form.hidden = true; }
      catch (e) { if (e instanceof NeedLogin && cfg.needsToken) { form.hidden = false; showError(e.message); } else showError(e.message); }
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const field = $("token");
      const token = field.value.trim();
      field.value = "";
      const res = await fetch("/kiosk/login", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
      if (!res.ok) { let msg = "HTTP " + res.status; try { msg = (await res.json()).message; } catch (_) { /* not JSON */ }
        showError("login refused: " + msg); return; }
      showError(""); attempt();
    });
    const out = $("logout");
    if (out) out.addEventListener("click", async () => {
      await fetch("/kiosk/logout", { method: "POST", credentials: "same-origin" });
      location.reload();
    });
    attempt();
  }

  // The live stream for a station prefix, in its slim form (what these pages show: ids, station, part, times,
  // verdict, score, threshold, image size, regions). handlers: onEvent(result), onConnected(), onState(live, why).
  function openFeed(prefix, handlers) {
    let controller = null, up = false, lastByte = 0, stopped = false;
    const timeoutMs = cfg.feedTimeoutSeconds * 1000;
    function state(live, why) { if (live !== up || !live) { up = live; handlers.onState(live, why); } }
    async function loop() {
      let backoff = 500;
      while (!stopped) {
        controller = new AbortController();
        try {
          const q = "?fields=slim&heartbeat=" + cfg.heartbeatSeconds + (prefix ? "&station=" + encodeURIComponent(prefix) : "");
          const res = await fetch("/api/v1/stream" + q, { credentials: "same-origin", signal: controller.signal });
          if (res.status === 401) throw new NeedLogin("session ended: log in again");
          if (!res.ok || !res.body) throw new Error("live feed: HTTP " + res.status);
          lastByte = Date.now(); backoff = 500;
          state(true, "");
          handlers.onConnected();
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            lastByte = Date.now();
            buf += value;
            let cut;
            while ((cut = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
              const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
              if (block.includes("event: result") && data) handlers.onEvent(JSON.parse(data));
            }
          }
          throw new Error("live feed closed by the service");
        } catch (e) {
          state(false, e.name === "AbortError" ? "no heartbeat for " + cfg.feedTimeoutSeconds + " s" : e.message);
          if (e instanceof NeedLogin) { stopped = true; $("token-form").hidden = false; return; }
          await new Promise((ok) => setTimeout(ok, backoff));
          backoff = Math.min(backoff * 2, 5000);
        }
      }
    }
    // never say live while stale: no byte (result or heartbeat) within the timeout is a dead feed
    const watch = setInterval(() => {
      if (up && Date.now() - lastByte > timeoutMs) { state(false, "no heartbeat"); if (controller) controller.abort(); }
    }, 200);
    loop();
    return { live: () => up && Date.now() - lastByte <= timeoutMs,
      close() { stopped = true; clearInterval(watch); if (controller) controller.abort(); } };
  }

  function showLink(live, why) {
    const link = $("link");
    link.dataset.state = live ? "live" : "down";
    link.textContent = live ? "● LIVE" : "✗ FEED DOWN";
    link.title = why || "";
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return Math.floor(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    return Math.floor(seconds / 3600) + " h ago";
  }

  function pct(x) { return x === null || x === undefined ? "—" : (100 * x).toFixed(1) + " %"; }

  window.Operator = { cfg, $, api, NeedLogin, withLogin, openFeed, showLink, showError, ago, pct };
})();
