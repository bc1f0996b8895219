// Dispo dashboard: a few lines of plain JavaScript. Pages work without it; it adds
// click-a-line-to-seek, live campaign progress and the charts.
"use strict";

function setupSeek() {
  const audio = document.querySelector("audio.recording");
  if (!audio) return;
  document.querySelectorAll("button.seek").forEach((button) => {
    button.addEventListener("click", () => {
      audio.currentTime = parseFloat(button.dataset.seek);
      audio.play().catch(() => {});
      document.querySelectorAll("button.seek.playing").forEach((b) => b.classList.remove("playing"));
      button.classList.add("playing");
    });
  });
}

function setupProgress() {
  const box = document.getElementById("progress");
  if (!box) return;
  const poll = async () => {
    try {
      const response = await fetch(box.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      box.querySelectorAll("[data-field]").forEach((el) => {
        const value = data[el.dataset.field];
        if (el.tagName === "PROGRESS") el.value = value; else el.textContent = value;
      });
      document.querySelectorAll("button[data-action]").forEach((b) => {
        b.disabled = !data.actions.includes(b.dataset.action);
        if (b.dataset.action === "start") b.textContent = data.status === "paused" ? "Resume" : "Start";
      });
    } catch (e) { /* the next poll tries again */ }
  };
  setInterval(poll, 2000);
}

// Fixed colours for the call statuses (green is good, red is bad), the palette for the rest.
const STATUS_COLOURS = { completed: "#1a7f37", in_progress: "#0a7b83", no_answer: "#8a5a00", busy: "#bf3989",
  failed: "#a4161a", cancelled: "#57606a", pending: "#6f42c1" };
const PALETTE = ["#0b5cad", "#1a7f37", "#a4161a", "#8a5a00", "#6f42c1", "#0a7b83", "#bf3989", "#57606a"];

function setupCharts() {
  if (typeof Chart === "undefined") return;
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const data = JSON.parse(canvas.dataset.chart);
    const stacked = canvas.dataset.kind === "stacked";
    data.datasets.forEach((ds, i) => { ds.backgroundColor = (canvas.dataset.linkSeries && STATUS_COLOURS[ds.label]) || PALETTE[i % PALETTE.length]; });
    const chart = new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: data.datasets },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked }, y: { stacked, beginAtZero: true } },
        onClick: (_event, elements) => {
          if (!elements.length) return;
          const { index, datasetIndex } = elements[0];
          const url = new URL(canvas.dataset.link, window.location.href);
          if (canvas.dataset.linkAll) {
            window.location.href = canvas.dataset.link.split("?")[0] + canvas.dataset.linkAll;
            return;
          }
          if (canvas.dataset.linkDay) {
            url.searchParams.set("dateFrom", data.labels[index]);
            url.searchParams.set("dateTo", data.labels[index]);
          }
          if (canvas.dataset.linkSeries) {
            url.searchParams.set(canvas.dataset.linkSeries, data.datasets[datasetIndex].label);
          }
          [...url.searchParams.keys()].forEach((k) => { if (!url.searchParams.get(k)) url.searchParams.delete(k); });
          window.location.href = url.toString();
        },
      },
    });
    canvas.chart = chart;
  });
}

document.addEventListener("DOMContentLoaded", () => { setupSeek(); setupProgress(); setupCharts(); });
