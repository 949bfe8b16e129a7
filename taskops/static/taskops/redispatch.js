/* taskops re-dispatch form: choosing a task (or the parameter, or the
   model) re-renders the form for it. The "Choose" button does that without
   JavaScript; this clicks it when such a select changes. Plain script, no
   build step. Loaded in the head without "defer": the listener sits on the
   document, so a select changed before the page finished loading still
   counts. */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.hasAttribute("data-taskops-shapes")) {
      return;
    }
    var button = select.form ? select.form.querySelector("[data-taskops-choose]") : null;
    if (button) {
      button.click();
    }
  });
})();
