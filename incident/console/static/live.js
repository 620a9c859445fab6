// Live board and inbox: the server sends an event when incidents or feedback change (server-sent
// events); the page then fetches itself and swaps its #live part in place. No build step, no library.
(function () {
  "use strict";
  var part = document.getElementById("live");
  var badge = document.getElementById("live-state");
  if (!part || !window.EventSource) { return; }
  var busy = false;
  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh) {
          part.replaceWith(fresh);
          part = fresh;
          document.body.setAttribute("data-updated", String(Date.now()));
        }
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () { busy = false; });
  }
  var source = new EventSource("/events");
  source.addEventListener("open", function () { if (badge) { badge.setAttribute("data-live", "on"); } });
  source.addEventListener("error", function () { if (badge) { badge.setAttribute("data-live", "off"); } });
  source.addEventListener("change", refresh);
  source.addEventListener("tick", refresh); // each minute: time left moves on
})();
