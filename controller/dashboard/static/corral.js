// Live updates: the server says "changed" on /ui/watch; every element with
// hx-trigger="corral:changed from:body" then re-fetches its part of the page.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) {
    return;
  }
  var timer = null;
  var status = document.getElementById("live-status");
  var source = new EventSource(live.getAttribute("data-live"));
  source.addEventListener("changed", function () {
    if (timer) {
      return;
    }
    timer = setTimeout(function () {
      timer = null;
      htmx.trigger(document.body, "corral:changed");
    }, 250);
  });
  source.onopen = function () {
    if (status) { status.textContent = "Live"; }
  };
  source.onerror = function () {
    if (status) { status.textContent = "Reconnecting…"; }
  };
})();
