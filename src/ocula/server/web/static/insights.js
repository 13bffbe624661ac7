// The Insights tab: the insights API of the current scope (dataset, slice or query) drawn
// with Apache ECharts — label distribution, annotations per image, box sizes and aspect
// ratios, metadata fields and each committed run's TP/FP/FN per class. Every bar carries
// its bucket's query and target (items or objects); clicking it hands the bucket to the
// page, which shows exactly those rows. Labels and values from the data are drawn by the
// chart as canvas text, and tooltips are built as DOM text, never parsed as markup.
import * as echarts from "./vendor/echarts-6.1.0.esm.min.js";
import { api } from "./api.js";
import { h } from "./dom.js";

const COLORS = { gt: "#4f8cff", pred: "#5cc8ff", items: "#9b7bff", size: "#2fb8a6",
                 meta: "#d9a53c", tp: "#2ee6a8", fp: "#ff3d7f", fn: "#ffb000" };
const TEXT = "#c9ceda", MUTED = "#8c93a3", LINE = "#2a2f3a";
// Chart instances of the open tab, disposed when it is drawn again.
let charts = [];

function fmtNum(v) {
  if (v === null || v === undefined) return "?";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return String(+Number(v).toPrecision(4));
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

function valueName(v) {
  if (v === null || v === undefined) return "(missing)";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** A tooltip as DOM text: the category, each series' value, and what a click does. */
function tooltip(params) {
  const list = Array.isArray(params) ? params : [params];
  const box = h("div", { class: "chart-tip" },
                h("strong", {}, String(list[0].name)));
  for (const p of list) {
    if (!p.data) continue;
    box.append(h("div", {}, `${p.seriesName}: ${Number(p.data.value).toLocaleString()}`));
  }
  if (list.some((p) => p.data && p.data.bucket)) {
    box.append(h("div", { class: "muted" }, "click to show these"));
  }
  return box;
}

/** A bar chart in `el`: `categories` along one axis, each series' values along the other
 * (`horizontal`: categories on the y axis, first at the top). Series data are
 * `{value, bucket}` where `bucket` is `{query, target, count}` or null. */
function barChart(el, { categories, series, horizontal = false, stack = false, onBar,
                        axisName = "" }) {
  const chart = echarts.init(el, null, { renderer: "canvas" });
  const catAxis = {
    type: "category", data: categories, inverse: horizontal,
    axisLabel: { color: TEXT, width: horizontal ? 110 : 80, overflow: "truncate",
                 interval: horizontal ? 0 : "auto", hideOverlap: true },
    axisLine: { lineStyle: { color: LINE } }, axisTick: { show: false },
  };
  const valAxis = {
    // The axis is named on vertical charts only: a horizontal chart's note says it.
    type: "value", name: horizontal ? "" : axisName, nameTextStyle: { color: MUTED },
    axisLabel: { color: MUTED, formatter: fmtNum },
    splitLine: { lineStyle: { color: LINE } }, minInterval: 1,
  };
  chart.setOption({
    backgroundColor: "transparent",
    animation: false,
    // A generated description of the data for screen readers (set as an attribute).
    aria: { enabled: true },
    grid: { left: horizontal ? 120 : 44, right: 18,
            top: series.length > 1 ? 28 : horizontal ? 6 : 26,
            bottom: horizontal ? 24 : 40 },
    legend: series.length > 1 ? { top: 0, textStyle: { color: TEXT } } : undefined,
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, formatter: tooltip,
               className: "chart-tooltip", backgroundColor: "rgba(10,12,16,.94)",
               borderColor: LINE, textStyle: { color: TEXT } },
    xAxis: horizontal ? valAxis : catAxis,
    yAxis: horizontal ? catAxis : valAxis,
    series: series.map((s) => ({
      type: "bar", name: s.name, data: s.data, stack: stack ? "all" : undefined,
      itemStyle: { color: s.color }, barMaxWidth: 28, cursor: "pointer",
      emphasis: { focus: "none" },
    })),
  });
  chart.on("click", (p) => { if (p.data && p.data.bucket) onBar(p.data.bucket); });
  el.echart = chart;  // the browser tests find a bar's position through it
  charts.push(chart);
  return chart;
}

function bar(b) { return { value: b.count, bucket: { query: b.query, target: b.target, count: b.count } }; }

function panel(grid, title, note, height, name) {
  const el = h("div", { class: "chart", "data-chart": name });
  el.style.height = `${height}px`;
  grid.append(h("section", { class: "chart-panel", "data-panel": name },
                h("h3", {}, title), note ? h("p", { class: "muted chart-note" }, note) : null, el));
  return el;
}

function heightFor(n) { return Math.max(150, Math.min(640, 26 * n + 40)); }

function range(b, unit = "") {
  if (b.min === null || b.min === undefined) return "none";
  return `${fmtNum(b.min)}–${fmtNum(b.max)}${unit}`;
}

function labelsChart(grid, data, run, onBar) {
  const gt = data.labels.annotations;
  const pred = run ? data.labels.predictions[run] || [] : [];
  const names = [...new Set([...gt, ...pred].map((b) => b.label))];
  const name = (l) => l === null ? "(no label)" : l;
  if (!names.length) return;
  const series = [{ name: "ground truth", color: COLORS.gt,
                    data: names.map((l) => { const b = gt.find((x) => x.label === l); return b ? bar(b) : null; }) }];
  if (run) {
    series.push({ name: `predictions (${run})`, color: COLORS.pred,
                  data: names.map((l) => { const b = pred.find((x) => x.label === l); return b ? bar(b) : null; }) });
  }
  barChart(panel(grid, "Labels", "objects per label", heightFor(names.length * series.length), "labels"),
           { categories: names.map(name), series, horizontal: true, onBar, axisName: "objects" });
}

function simpleChart(grid, name, title, note, rows, color, onBar, opts = {}) {
  if (!rows.length) return;
  barChart(panel(grid, title, note, opts.height || 220, name),
           { categories: rows.map((r) => r.cat), series: [{ name: opts.series || title, color,
             data: rows.map((r) => r.bucket ? bar(r.bucket) : { value: r.count, bucket: null }) }],
             onBar, axisName: opts.axisName || "" });
}

function metadataCharts(grid, metadata, onBar) {
  for (const [field, info] of Object.entries(metadata)) {
    let rows;
    let note = info.type === "numeric" ? "items per value range" : "items per value";
    if (info.type === "numeric") {
      rows = info.buckets.map((b) => ({ cat: range(b), bucket: b }));
      if (info.missing) {
        rows.push({ cat: "(not a number)", bucket: { query: info.missing_query, target: "items",
                                                     count: info.missing } });
      }
    } else {
      rows = info.values.map((v) => ({ cat: valueName(v.value), bucket: v }));
      if (info.other) note += ` · ${info.other.toLocaleString()} in other values`;
    }
    if (!rows.length) continue;
    const horizontal = info.type !== "numeric";
    const el = panel(grid, `metadata.${field}`, note,
                     horizontal ? heightFor(rows.length) : 220, `metadata.${field}`);
    barChart(el, { categories: rows.map((r) => r.cat), horizontal, onBar, axisName: "items",
                   series: [{ name: "items", color: COLORS.meta, data: rows.map((r) => bar(r.bucket)) }] });
  }
}

function runCharts(grid, runs, onBar) {
  for (const [name, info] of Object.entries(runs)) {
    if (!info.committed) {
      grid.append(h("section", { class: "chart-panel", "data-panel": `run:${name}` },
                    h("h3", {}, `Run ${name}`),
                    h("p", { class: "muted chart-note" }, "Not committed: no match results yet.")));
      continue;
    }
    const classes = info.classes;
    if (!classes.length) continue;
    const cats = classes.map((c) => c.label === null ? "(no label)" : c.label);
    const series = ["tp", "fp", "fn"].map((st) => ({
      name: st.toUpperCase(), color: COLORS[st],
      data: classes.map((c) => ({ value: c[st], bucket: { ...c.queries[st], count: c[st] } })),
    }));
    const el = panel(grid, `Run ${name}: TP / FP / FN per class`, "objects per class and match status",
                     heightFor(classes.length), `run:${name}`);
    barChart(el, { categories: cats, series, horizontal: true, stack: true, onBar,
                   axisName: "objects" });
  }
}

/** Draw the insights of `scope` ({query, slice, run}) into `root`; `onBar(bucket)` is
 * called with `{query, target, count}` when a bar is clicked. Resolves when drawn (or,
 * when `current()` says a newer view replaced this one meanwhile, without drawing). */
export async function drawInsights(root, dataset, scope, onBar, current = () => true) {
  for (const c of charts) c.dispose();
  charts = [];
  root.replaceChildren(h("p", { class: "muted" }, "Counting…"));
  const data = await api(`/datasets/${encodeURIComponent(dataset)}/insights`, {
    method: "POST", body: { query: scope.query || null, slice: scope.slice || null },
  });
  if (!current()) return null;
  const s = data.scope;
  const where = [s.slice ? `slice ${s.slice}` : null, s.query ? `query ${s.query}` : null]
    .filter(Boolean).join(" · ") || "whole dataset";
  const grid = h("div", { class: "charts" });
  root.replaceChildren(
    h("p", { class: "insights-scope" },
      h("strong", {}, `${plural(s.items, "item")} · ${plural(s.annotations, "annotation")}`),
      h("span", { class: "muted" }, ` in ${where}. Click a bar to show its items or objects.`)),
    grid);
  // Charts are sized from their container, so they are made once it is in the page.
  labelsChart(grid, data, scope.run, onBar);
  simpleChart(grid, "per-item", "Annotations per image", "items by their number of annotations",
              data.annotations_per_item.map((b) => ({ cat: b.or_more ? `${b.value}+` : String(b.value), bucket: b })),
              COLORS.items, onBar, { axisName: "items", series: "items" });
  simpleChart(grid, "area", "Box area (px²)", "objects per area range",
              data.area.map((b) => ({ cat: range(b), bucket: b })), COLORS.size, onBar,
              { axisName: "objects", series: "objects" });
  simpleChart(grid, "aspect", "Aspect ratio (width / height)", "objects per ratio range",
              data.aspect.map((b) => ({ cat: range(b), bucket: b })), COLORS.size, onBar,
              { axisName: "objects", series: "objects" });
  runCharts(grid, data.runs, onBar);
  metadataCharts(grid, data.metadata, onBar);
  return data;
}

/** Fit the charts to their panels (after the tab is shown or the window resized). */
export function resizeCharts() {
  for (const c of charts) c.resize();
}
