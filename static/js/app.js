/* Behaviour every page shares, here rather than inline: the Content-Security-Policy runs
 * scripts from /static/ only (no <script> blocks, on* attributes or hx-on), so a link or markup
 * slipped in from data cannot run. Loaded after htmx, before the document is ready. */
(() => {
  "use strict";
  // htmx would add its indicator rules as an inline <style>, which the policy refuses:
  // app.css has them. Nothing here evaluates strings (hx-on, js: values), so neither may htmx.
  htmx.config.includeIndicatorStyles = false;
  htmx.config.allowEval = false;

  // A live region's socket state: [data-live] says on or off (the CSS shows which).
  // A member socket the server closed because its person lost their rights (4403: removed or
  // deactivated; 4409: another role) reloads the page, which then shows what they may still
  // see. Only a socket that was open: a refused connect must not reload forever.
  const RIGHTS_CHANGED = [4403, 4409];
  for (const [event, state] of [["htmx:wsOpen", "on"], ["htmx:wsClose", "off"]]) {
    document.addEventListener(event, (e) => {
      const live = e.target.closest && e.target.closest("[data-live]");
      if (!live) return;
      const code = e.detail && e.detail.event && e.detail.event.code;
      if (state === "off" && live.dataset.live === "on" && RIGHTS_CHANGED.includes(code)) {
        location.reload();
      }
      live.dataset.live = state;
    });
  }

  // <form data-confirm="Delete …?">: asks first, and sends nothing unless confirmed.
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !confirm(message)) event.preventDefault();
  });

  // <input type="file" data-submit-on-change>: picking a file sends its form.
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("[data-submit-on-change]")) event.target.form.submit();
  });

  // Copy buttons: the text of the element named by data-copy (delegated: the revealed secret
  // arrives later through htmx).
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(source.textContent);
    } catch {
      // No clipboard API outside a secure context: select the text for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(source);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
      return;
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
})();
