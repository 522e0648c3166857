// Multi-station overview: a card per station under a prefix with its last verdict, its age, the shift's
// good/NG counts and yield. Counts come from the service (a reload keeps them, and it is asked again every
// 10 s and at shift change); a result on the live feed updates its card at once, and the ages tick here.
(() => {
  const { cfg, $, api, withLogin, openFeed, showLink, showError, ago, pct } = window.Operator;
  let prefix = new URLSearchParams(location.hash.slice(1)).get("prefix") || "";
  let feed = null, data = null;

  function card(s) {
    const div = document.createElement("div");
    const age = s.age_s === null ? null : s.age_s + (Date.now() - s.seenAt) / 1000;
    const verdict = s.last ? s.last.verdict : "—";
    div.className = "card " + (s.last ? verdict.toLowerCase() : "none");
    div.classList.toggle("is-stale", age === null || age > cfg.staleSeconds || !(feed && feed.live()));
    div.classList.toggle("alarming", s.fail_streak >= cfg.alarmFails);
    div.dataset.station = s.station_path;
    const name = s.station_path.split("/").slice(-2).join(" / ");
    div.innerHTML = '<div class="name"></div><div class="path"></div><div class="card-verdict"></div>' +
      '<div class="meta"><span class="age"></span><span class="streak"></span></div>' +
      '<div class="meta"><span>Good <b class="good"></b></span><span>NG <b class="ng"></b></span>' +
      '<span>Yield <b class="yield"></b></span></div>';
    div.querySelector(".name").textContent = name;
    div.querySelector(".path").textContent = s.station_path;
    div.querySelector(".card-verdict").textContent = verdict;
    div.querySelector(".age").textContent = ago(age);
    div.querySelector(".streak").textContent = s.fail_streak >= cfg.alarmFails ? s.fail_streak + " FAILs in a row" : "";
    div.querySelector(".good").textContent = s.good;
    div.querySelector(".ng").textContent = s.ng;
    div.querySelector(".yield").textContent = pct(s.yield);
    div.addEventListener("click", () => { location.href = "/#station=" + encodeURIComponent(s.station_path); });
    return div;
  }

  function render() {
    if (!data) return;
    const grid = $("grid");
    grid.replaceChildren(...data.stations.map(card));
    if (!data.stations.length) grid.textContent = "no stations under " + (prefix || "(all)");
    $("shift").textContent = "Shift since " + new Date(data.shift_start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  async function refresh() {
    try {
      const got = await api("/api/v1/operator/overview" + (prefix ? "?station=" + encodeURIComponent(prefix) : ""));
      const at = Date.now();
      for (const s of got.stations) s.seenAt = at;
      data = got; render();
    } catch (e) { showError(e.message); }
  }

  function onEvent(r) {  // the card follows the feed between refreshes
    const s = data && data.stations.find((x) => x.station_path === r.station_path);
    if (!s) return;
    s.last = r; s.age_s = 0; s.seenAt = Date.now();
    if (Date.parse(r.inspected_at) >= Date.parse(data.shift_start)) s[r.verdict === "FAIL" ? "ng" : "good"] += 1;
    s.fail_streak = r.verdict === "FAIL" ? s.fail_streak + 1 : 0;
    s.yield = s.good + s.ng ? s.good / (s.good + s.ng) : null;
    render();
  }

  async function start() {
    $("prefix").value = prefix;
    await api("/api/v1/stations");  // asks for the login when needed
    await refresh();
    if (feed) feed.close();
    feed = openFeed(prefix, { onEvent, onConnected: refresh,
      onState: (live, why) => { showLink(live, why); render(); } });
  }

  $("prefix-form").addEventListener("submit", (e) => {
    e.preventDefault(); prefix = $("prefix").value.trim().replace(/^\/+|\/+$/g, "");
    location.hash = "prefix=" + encodeURIComponent(prefix); start().catch((err) => showError(err.message));
  });
  if (!cfg.needsToken) $("logout").hidden = true;
  setInterval(render, 1000);
  setInterval(() => { if (data && Date.now() >= Date.parse(data.next_shift)) refresh(); }, 1000);
  setInterval(refresh, 10000);
  withLogin(start);
})();
