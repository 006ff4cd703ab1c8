/* The analytics dashboard's charts and its live "Now" tile.
 * The figures come from the page (json_script "analytics-charts"), drawn with the vendored
 * Chart.js; every chart has its figures in a table or CSV beside it. The "Now" tile is swapped
 * by htmx when the organization socket pushes it; after the socket (re)opens, pushes may have
 * been missed, so the tile asks for itself again. */
(() => {
  "use strict";
  const COLOURS = { bot: "#047857", agent: "#2563eb", escalation: "#d97706", abandoned: "#b91c1c" };

  document.addEventListener("htmx:wsOpen", (event) => {
    if (event.target.closest && event.target.closest("#analytics-live")) {
      htmx.trigger(document.body, "analytics-resync");
    }
  });

  function percent(value) {
    return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
  }

  function rates(canvas, data) {
    const line = (label, values, colour) => ({
      label, data: values.map((v) => (v === null ? null : v)), borderColor: colour,
      backgroundColor: colour, tension: 0.25, spanGaps: true, pointRadius: data.days.length > 40 ? 0 : 2,
    });
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: data.days,
        datasets: [
          line("AI resolution rate", data.ai_resolution_rate, COLOURS.bot),
          line("Escalation rate", data.escalation_rate, COLOURS.escalation),
          line("Abandonment rate", data.abandonment_rate, COLOURS.abandoned),
        ],
      },
      options: {
        maintainAspectRatio: false, animation: false, interaction: { mode: "index", intersect: false },
        scales: { y: { min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%` } } },
        plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${percent(c.raw)}` } } },
      },
    });
  }

  function reasons(canvas, data) {
    return new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: [{ label: "Escalations", data: data.counts, backgroundColor: COLOURS.escalation }] },
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  function csat(canvas, data) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"],
        datasets: [
          { label: "Resolved by the bot", data: data.bot, backgroundColor: COLOURS.bot },
          { label: "Resolved by an agent", data: data.agent, backgroundColor: COLOURS.agent },
        ],
      },
      options: { maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  function draw() {
    const source = document.getElementById("analytics-charts");
    if (!source || typeof Chart === "undefined") return;
    const charts = JSON.parse(source.textContent);
    const drawers = { "chart-rates": [rates, charts.rates], "chart-reasons": [reasons, charts.reasons], "chart-csat": [csat, charts.csat] };
    for (const [id, [drawer, data]] of Object.entries(drawers)) {
      const canvas = document.getElementById(id);
      if (canvas) drawer(canvas, data);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
