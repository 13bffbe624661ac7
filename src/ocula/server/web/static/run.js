// One committed run's metrics for the scope and label version of the URL (runscope.js):
// the 12 COCO numbers, PR curves per class, P/R/F1 against the confidence threshold with
// the best-F1 threshold, the confusion matrix (a click on a cell opens its objects in
// the dataset's patches view) and the failure summary, each number a link to its
// objects; TIDE's error breakdown (runtide.js) and the run against two label versions
// (runversions.js). The server gives every cell and number the object query that selects exactly
// its objects, or none where no query does (then the number is shown without a link).
// Charts are Apache ECharts; tooltips render as canvas text (richText), never as HTML,
// since labels and run names are user text.
import * as echarts from "./vendor/echarts-6.1.0.esm.min.js";
import { api } from "./api.js";
import { h, labelColor } from "./dom.js";
import { apiSearch, bindScopeBar, metric, patchesHref, readRunScope } from "./runscope.js";
import { showTide } from "./runtide.js";
import { bindVersions, showVersions } from "./runversions.js";

const root = document.getElementById("run-page");
const dataset = root.dataset.dataset;
const runId = root.dataset.runId;
const runName = root.dataset.runName;
const status = document.getElementById("run-status");

const TEXT = "#e6e8ee", MUTED = "#8c93a3", LINE = "#2a2f3a";
const STAT_TITLES = {
  AP: "AP @ IoU .50:.95", AP50: "AP @ IoU .50", AP75: "AP @ IoU .75",
  APs: "AP small", APm: "AP medium", APl: "AP large",
  AR1: "AR, 1 detection", AR10: "AR, 10 detections", AR100: "AR, 100 detections",
  ARs: "AR small", ARm: "AR medium", ARl: "AR large",
};
const charts = {};
let generation = 0;

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), null,
                                             { renderer: "canvas" });
  return charts[id];
}
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

const axis = (name, extra = {}) => ({
  name, nameLocation: "middle", nameGap: 28, nameTextStyle: { color: MUTED },
  axisLine: { lineStyle: { color: LINE } }, axisLabel: { color: MUTED },
  splitLine: { lineStyle: { color: LINE } }, ...extra,
});
const tooltip = (extra = {}) => ({ renderMode: "richText", backgroundColor: "#0a0c10",
                                   borderColor: LINE, textStyle: { color: TEXT }, ...extra });

function drawStats(stats) {
  const el = document.getElementById("stats");
  el.replaceChildren(...Object.entries(stats).map(([key, value]) =>
    h("div", { class: "stat-tile", "data-key": key, title: STAT_TITLES[key] || key },
      h("span", { class: "stat-name" }, key),
      h("span", { class: "stat-value" }, metric(value)))));
}

function drawPR(curves) {
  const series = Object.entries(curves).map(([label, c]) => ({
    name: label, type: "line", showSymbol: false, step: "end",
    lineStyle: { width: 2 }, itemStyle: { color: labelColor(label) },
    // COCO marks recall levels a class never reaches with -1: no point there.
    data: c.recall.map((r, i) => [r, c.precision[i]]).filter(([, p]) => p >= 0),
  }));
  chart("pr-chart").setOption({
    animation: false, backgroundColor: "transparent",
    grid: { left: 50, right: 16, top: 36, bottom: 44 },
    legend: { type: "scroll", top: 0, textStyle: { color: TEXT },
              pageTextStyle: { color: MUTED } },
    tooltip: tooltip({ trigger: "item", formatter: (p) =>
      `${p.seriesName}\nrecall ${p.value[0].toFixed(2)} · precision ${p.value[1].toFixed(3)}` }),
    xAxis: axis("Recall", { type: "value", min: 0, max: 1 }),
    yAxis: axis("Precision", { type: "value", min: 0, max: 1, nameGap: 36 }),
    series,
  }, true);
}

function drawThresholds(curve, best, current) {
  const line = (name, key, color) => ({
    name, type: "line", showSymbol: false, lineStyle: { width: 2 }, itemStyle: { color },
    data: curve.threshold.map((t, i) => [t, curve[key][i]]),
  });
  const f1 = line("F1", "f1", "#ffb000");
  f1.markLine = {
    symbol: "none", silent: true, lineStyle: { color: "#ffb000", type: "dashed" },
    label: { color: TEXT, formatter: `best F1 ${best.f1.toFixed(3)} @ ${best.score_threshold.toFixed(2)}` },
    data: [{ xAxis: best.score_threshold }],
  };
  chart("threshold-chart").setOption({
    animation: false, backgroundColor: "transparent",
    grid: { left: 50, right: 16, top: 36, bottom: 44 },
    legend: { top: 0, textStyle: { color: TEXT } },
    tooltip: tooltip({ trigger: "axis" }),
    xAxis: axis("Confidence threshold", { type: "value", min: 0, max: 1 }),
    yAxis: axis("", { type: "value", min: 0, max: 1 }),
    series: [line("Precision", "precision", "#4f8cff"), line("Recall", "recall", "#2ee6a8"), f1],
  }, true);
  document.getElementById("best-f1").textContent =
    `Best F1 ${best.f1.toFixed(3)} at confidence ≥ ${best.score_threshold.toFixed(3)} ` +
    `(precision ${best.precision.toFixed(3)}, recall ${best.recall.toFixed(3)}). ` +
    `The numbers below use confidence ≥ ${current}.`;
}

function drawConfusion(cm, scope) {
  const labels = cm.labels;  // ground-truth rows / predicted columns, then background
  const k = labels.length;
  const data = [];
  let max = 1;
  cm.counts.forEach((row, r) => row.forEach((n, c) => {
    data.push({ value: [c, r, n], query: cm.queries[r][c] });
    max = Math.max(max, n);
  }));
  const el = document.getElementById("confusion-chart");
  const c = chart("confusion-chart");
  c.setOption({
    animation: false, backgroundColor: "transparent",
    grid: { left: 96, right: 16, top: 10, bottom: 64 },
    tooltip: tooltip({ trigger: "item", formatter: (p) => {
      const [col, row, n] = p.value;
      const open = p.data.query ? "click to open its objects" :
        (n ? "too many objects for one exact link" : "");
      return `ground truth ${labels[row]} · predicted ${labels[col]}\n${n} ${open}`;
    } }),
    xAxis: axis("Predicted", { type: "category", data: labels, splitArea: { show: false },
                               axisLabel: { color: MUTED, interval: 0, rotate: k > 6 ? 40 : 0 },
                               nameGap: 44 }),
    yAxis: axis("Ground truth", { type: "category", data: labels, inverse: true,
                                  axisLabel: { color: MUTED, interval: 0 }, nameGap: 80 }),
    visualMap: { show: false, min: 0, max, inRange: { color: ["#171a21", "#1f3b73", "#4f8cff"] } },
    series: [{
      type: "heatmap", data, cursor: "pointer",
      label: { show: true, color: TEXT, formatter: (p) => String(p.value[2]) },
      itemStyle: { borderColor: "#0f1115", borderWidth: 1 },
      emphasis: { itemStyle: { borderColor: TEXT, borderWidth: 2 } },
    }],
  }, true);
  c.off("click");
  c.on("click", (p) => {
    if (p.data && p.data.query) location.assign(patchesHref(dataset, p.data.query, runName, scope.slice));
  });
  // Where each cell is drawn and where it leads, for keyboard-free checks of the page.
  el.dataset.cells = JSON.stringify(data.map((d) => {
    const [x, y] = c.convertToPixel({ seriesIndex: 0 }, [d.value[0], d.value[1]]);
    return { row: labels[d.value[1]], col: labels[d.value[0]], count: d.value[2], x, y,
             href: d.query ? patchesHref(dataset, d.query, runName, scope.slice) : null };
  }));
  document.getElementById("confusion-note").textContent =
    `Rows: ground truth; columns: predictions (class-agnostic match at IoU ≥ ${cm.iou_threshold}, ` +
    `confidence ≥ ${cm.score_threshold}). Background row: predictions matching nothing; ` +
    "background column: ground truth nothing matched.";
}

const CAUSES = [["duplicate", "Duplicates", "a better prediction already took the object"],
                ["localisation", "Poor localisation", "on a real object, but the box is off"],
                ["background", "Background", "nothing there (IoU < 0.1 with every object)"]];
const SIZES = [["small", "Small", "< 32² px"], ["medium", "Medium", "32²–96² px"],
               ["large", "Large", "≥ 96² px"]];

function drawFailures(summary, scope) {
  const group = (title, part, rows) => h("div", { class: "failure-group" },
    h("h4", {}, title),
    h("ul", { class: "failure-list" }, rows.map(([key, name, why]) => {
      const n = summary[part][key];
      // False positives open most confident first: the worst mistakes lead the list.
      const query = summary.queries[part][key] &&
        summary.queries[part][key] + (part === "false_positives" ? " order by confidence desc" : "");
      const number = query && n
        ? h("a", { class: "failure-n", "data-key": key, href:
                   patchesHref(dataset, query, runName, scope.slice) }, n.toLocaleString())
        : h("span", { class: "failure-n", "data-key": key }, n.toLocaleString());
      return h("li", {}, number, h("span", { class: "failure-name" }, name),
               h("span", { class: "muted" }, why));
    })));
  document.getElementById("failures").replaceChildren(
    group("False positives by cause", "false_positives", CAUSES),
    group("Missed ground truth by size", "false_negatives", SIZES));
}

function drawPerClass(rows) {
  const tbody = document.querySelector("#per-class tbody");
  const num = (v) => h("td", { class: "num" }, v);
  tbody.replaceChildren(...rows.map((r) => {
    const at = r.at_threshold || {};
    const count = (v) => (v === undefined ? "—" : Number(v).toLocaleString());
    return h("tr", { "data-label": r.label },
      h("td", {}, h("span", { class: "swatch", "data-label": r.label }), " ", r.label),
      num(count(r.num_ground_truth)), num(count(r.num_detections)),
      num(metric(r.ap)), num(metric(r.ap50)), num(metric(r.ar)),
      num(count(at.tp)), num(count(at.fp)), num(count(at.fn)),
      num(metric(at.precision)), num(metric(at.recall)), num(metric(at.f1)));
  }));
  for (const sw of tbody.querySelectorAll(".swatch")) sw.style.background = labelColor(sw.dataset.label);
}

async function show(scope) {
  const mine = ++generation;
  const isCurrent = () => mine === generation;
  showTide(scope, { dataset, runId, runName }, isCurrent);
  showVersions(scope, isCurrent);
  status.className = "query-status";
  status.textContent = "Computing…";
  root.setAttribute("aria-busy", "true");
  try {
    const [m, summary] = await Promise.all([
      api(`/runs/${encodeURIComponent(runId)}/metrics${apiSearch(scope)}`),
      api(`/runs/${encodeURIComponent(runId)}/failure_summary` +
          apiSearch({ slice: scope.slice, query: scope.query })),
    ]);
    if (mine !== generation) return;
    drawStats(m.stats);
    drawPR(m.pr_curves);
    drawThresholds(m.threshold_curve, m.best_f1, m.confidence_threshold);
    drawConfusion(m.confusion_matrix, scope);
    drawFailures(summary, scope);
    drawPerClass(m.per_class);
    const slice = document.getElementById("scope-slice");
    let where = scope.slice ? slice.options[slice.selectedIndex].text : "all items";
    if (scope.query) where += ` where ${scope.query}`;
    const labels = m.annotation_version ? `label version ${m.annotation_version}` : "current labels";
    status.textContent = `Scored on ${where}, against ${labels}.`;
    root.dataset.loaded = `${scope.slice}|${scope.version}|${scope.query}`;
  } catch (err) {
    if (mine !== generation) return;
    status.className = "query-status error";
    status.textContent = err.message;
  } finally {
    if (mine === generation) root.removeAttribute("aria-busy");
  }
}

bindScopeBar(show);
bindVersions(() => showVersions(readRunScope(), () => true));
