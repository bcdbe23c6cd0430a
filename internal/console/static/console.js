// Skein console: refresh the page's main part every data-refresh-ms.
// The server renders it (the same template as the first view, asked with
// ?part=main); this swaps it in and shows whether updates arrive.
(function () {
  "use strict";
  var main = document.getElementById("content");
  var live = document.getElementById("live");
  if (!main) { return; }
  var period = parseInt(main.getAttribute("data-refresh-ms"), 10) || 2000;
  var failures = 0;

  function url() {
    var u = new URL(window.location.href);
    u.searchParams.set("part", "main");
    return u.toString();
  }

  function show(ok, text) {
    live.textContent = text;
    live.className = "live " + (ok ? "ok" : "err");
  }

  function tick() {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, Math.max(4 * period, 8000));
    fetch(url(), { cache: "no-store", signal: ctl.signal })
      .then(function (resp) {
        if (!resp.ok && resp.status !== 404) { throw new Error("HTTP " + resp.status); }
        return resp.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        failures = 0;
        show(true, "live · " + new Date().toLocaleTimeString());
      })
      .catch(function (err) {
        failures++;
        show(false, "not updating (" + (err.name === "AbortError" ? "timeout" : err.message) + ")");
      })
      .finally(function () {
        clearTimeout(timer);
        // Back off while the node does not answer, up to 5 periods.
        setTimeout(tick, period * Math.min(1 + failures, 5));
      });
  }
  setTimeout(tick, period);
})();
