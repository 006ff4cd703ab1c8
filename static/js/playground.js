/* The playground: the widget announces each finished answer; its trace is fetched for this
 * member and shown newest first. */
(() => {
  "use strict";
  document.addEventListener("handoff:message", (event) => {
    const id = event.detail.id;
    if (document.getElementById(`trace-${id}`)) return;
    const traces = document.getElementById("traces");
    const slot = document.createElement("div");
    slot.id = `trace-${id}`;
    traces.prepend(slot);
    document.getElementById("traces-empty")?.remove();
    htmx.ajax("GET", traces.dataset.url.replace(/0$/, id), { target: slot, swap: "outerHTML" });
  });
})();
