// The Reports page: the period picker, the charts (Chart.js, served from static/vendor/) with a
// "show as table" switch each, and the live queue kept fresh over the reports socket.
// Every figure is in the HTML already (the tables); without Chart.js the tables simply stay.

const dataNode = document.getElementById("report-data");
const data = dataNode ? JSON.parse(dataNode.textContent) : null;
const L = data ? data.labels : {};

// --- The period: a preset sends the form at once; "Custom range" waits for the two dates -------
const periodSelect = document.querySelector("[data-period-select]");
const customRange = document.querySelector("[data-custom-range]");
function showCustom() {
  if (customRange && periodSelect) customRange.hidden = periodSelect.value !== "custom";
}
if (periodSelect) {
  showCustom();
  periodSelect.addEventListener("change", () => {
    showCustom();
    if (periodSelect.value !== "custom") periodSelect.form.requestSubmit();
  });
}

// --- Charts ---------------------------------------------------------------------------------
const COLORS = { a: "#4f46e5", b: "#10b981", c: "#f59e0b", d: "#ef4444" };
const minutes = (seconds) => (seconds === null || seconds === undefined ? null : Math.round((seconds / 60) * 10) / 10);

function byHour(d) {
  return {
    type: "bar",
    data: {
      labels: d.hours.map((h) => `${String(h).padStart(2, "0")}:00`),
      datasets: [
        { label: L.customer_messages, data: d.customer_messages, backgroundColor: COLORS.a, yAxisID: "y" },
        { label: L.replies, data: d.replies, backgroundColor: COLORS.b, yAxisID: "y" },
        { type: "line", label: L.frt_median, data: d.frt_median.map(minutes), borderColor: COLORS.c, backgroundColor: COLORS.c, yAxisID: "y1", spanGaps: true },
        { type: "line", label: L.frt_average, data: d.frt_average.map(minutes), borderColor: COLORS.d, backgroundColor: COLORS.d, yAxisID: "y1", spanGaps: true },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        y: { beginAtZero: true, title: { display: true, text: L.count } },
        y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: L.minutes } },
      },
    },
  };
}

function byDay(d) {
  return {
    type: "line",
    data: {
      labels: d.days,
      datasets: [
        { label: L.opened, data: d.opened, borderColor: COLORS.a, backgroundColor: COLORS.a },
        { label: L.resolved, data: d.resolved, borderColor: COLORS.b, backgroundColor: COLORS.b },
        { label: L.customer_messages, data: d.customer_messages, borderColor: COLORS.c, backgroundColor: COLORS.c },
        { label: L.replies, data: d.replies, borderColor: COLORS.d, backgroundColor: COLORS.d },
      ],
    },
    options: { maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } },
  };
}

const BUILDERS = { by_hour: byHour, by_day: byDay };

function setMode(section, asTable) {
  section.querySelector("[data-chart-canvas]").hidden = asTable;
  section.querySelector("[data-chart-table]").hidden = !asTable;
  const toggle = section.querySelector("[data-chart-toggle]");
  toggle.textContent = asTable ? L.showChart : L.showTable;
  toggle.setAttribute("aria-pressed", asTable ? "true" : "false");
  section.dataset.mode = asTable ? "table" : "chart";
}

if (data && window.Chart) {
  for (const section of document.querySelectorAll("[data-chart]")) {
    const build = BUILDERS[section.dataset.chart];
    if (!build) continue;
    const canvas = section.querySelector("canvas");
    section.querySelector("[data-chart-canvas]").hidden = false;
    new window.Chart(canvas, build(data[section.dataset.chart]));
    const toggle = section.querySelector("[data-chart-toggle]");
    toggle.hidden = false;
    toggle.addEventListener("click", () => setMode(section, section.dataset.mode !== "table"));
    setMode(section, false);
  }
}

// --- The live queue: the socket says "changed" (throttled by the server); we fetch the block ---
const liveBox = document.querySelector("[data-reports-live]");
const liveStatus = document.querySelector("[data-reports-live-status]");
let refreshing = false;

async function refreshLive() {
  if (!liveBox || refreshing) return;
  refreshing = true;
  try {
    const answer = await fetch(liveBox.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (answer.ok) {
      liveBox.innerHTML = await answer.text();
      liveBox.dataset.refreshed = String(Date.now());
    } else if (answer.status === 403 || answer.status === 302) location.reload();
  } finally {
    refreshing = false;
  }
}

function connect(attempt = 0) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/reports/`);
  socket.addEventListener("open", () => {
    attempt = 0;
    document.body.dataset.reportsLive = "yes";
    if (liveStatus) liveStatus.classList.add("ok");
  });
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "changed") refreshLive();
  });
  socket.addEventListener("close", (event) => {
    document.body.dataset.reportsLive = "no";
    if (liveStatus) liveStatus.classList.remove("ok");
    if (event.code === 4409) return location.reload(); // their access changed
    if (event.code === 4401 || event.code === 4403) return;
    setTimeout(() => connect(attempt + 1), Math.min(30000, 1000 * 2 ** attempt));
  });
}

if (liveBox) {
  connect();
  // Without a shared channel layer (the embedded default) the worker's changes reach no socket.
  setInterval(refreshLive, 30000);
}
