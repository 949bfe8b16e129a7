/* taskops dashboard: say so when a refresh fails.

   htmx keeps the panel as it was when a refresh fails (an error answer:
   htmx:responseError; no answer at all: htmx:sendError), which would leave
   old figures looking current. The panel carries a hidden alert (role
   "alert", read out when shown); this shows it with the reason. A later
   refresh that succeeds swaps in a new panel, whose alert is hidden again:
   nothing here has to clear it. Plain script, no build step. */
(function () {
  "use strict";

  /* The alert of the dashboard panel an htmx event came from, if it did. */
  function alertFor(event) {
    var panel = event.target instanceof Element ? event.target.closest("#taskops-panel") : null;
    return panel ? panel.querySelector("[data-refresh-error]") : null;
  }

  function show(alert, reason) {
    alert.querySelector("[data-reason]").textContent = reason;
    alert.hidden = false;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var alert = alertFor(event);
    if (alert) {
      var xhr = event.detail.xhr;
      var status = (xhr.status + " " + (xhr.statusText || "")).trim();
      show(alert, alert.getAttribute("data-status-text").replace("%(status)s", status));
    }
  });

  document.addEventListener("htmx:sendError", function (event) {
    var alert = alertFor(event);
    if (alert) {
      show(alert, alert.getAttribute("data-network-text"));
    }
  });
})();
