// The run page's TIDE error breakdown (GET /runs/{id}/errors, docs/evaluation.md): a bar
// per error type — the AP50 the run would gain were that kind of error fixed — and the
// two special ones (all false positives, all false negatives), with counts. Each bar and
// count opens exactly its objects in the patches view: the answer names the prediction
// (or, for misses, annotation) ids behind every error, and the link's query lists them
// (`id in [...]`). A list too long for a link, or labels of a past version that no
// query sees any more, get no link, and the page says so.
import * as echarts from "./vendor/echarts-6.1.0.esm.min.js";
import { api } from "./api.js";
import { h } from "./dom.js";
import { apiSearch, patchesHref } from "./runscope.js";

// As services/evaluation_links.py: a link carries its query in the URL (?q=,
// percent-encoded), and the server reads request lines of 16 KiB at most.
export const MAX_LINK_QUERY = 7000;
// The most ids an `id in [...]` link can hold (each takes at least 5 characters).
const MAX_IDS = Math.floor(MAX_LINK_QUERY / 5);
const TYPES = ["cls", "loc", "both", "dupe", "bkg", "miss"];
const SPECIAL = ["fp", "fn"];
// Misses and false negatives are ground truth; every other error is a prediction.
const ON_ANNOTATIONS = new Set(["miss", "fn"]);
const TEXT = "#e6e8ee", MUTED = "#8c93a3", LINE = "#2a2f3a";

/** A string literal of the query language (services/insights_scan.py quote). */
export function quote(text) {
  return `"${String(text).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The object query selecting exactly `ids` of the run, or null when it is too long. */
export function idQuery(kind, runName, ids) {
  const query = `type = ${kind} and run = ${quote(runName)} and id in [${ids.map(quote).join(", ")}]`;
  return query.length <= MAX_LINK_QUERY ? query : null;
}

async function selectedCount(dataset, query, slice) {
  const answer = await api(`/datasets/${encodeURIComponent(dataset)}/query/objects`, {
    method: "POST", body: { query, slice: slice || null, with_total: true, page_size: 1 } });
  return answer.total;
}

/** The bars: one per error type then the special two, each with its link (or why none). */
async function bars(out, ctx, scope) {
  const rows = [...TYPES.map((k) => [k, out.errors[k], false]),
                ...SPECIAL.map((k) => [k, out.special[k], true])];
  return Promise.all(rows.map(async ([key, e, special]) => {
    const onAnn = ON_ANNOTATIONS.has(key);
    const ids = (onAnn ? e.annotation_ids : e.prediction_ids) || [];
    let query = null, why = "";
    if (e.count && (e.truncated || ids.length !== e.count)) why = "ids not all listed";
    else if (e.count) {
      query = idQuery(onAnn ? "annotation" : "prediction", ctx.runName, ids);
      if (!query) why = "too many for one link";
      // Ground truth of a past label version may since have been deleted or changed:
      // a query sees current labels only, so the link is kept only if it counts right.
      else if (onAnn && scope.version &&
               await selectedCount(ctx.dataset, query, scope.slice) !== e.count) {
        query = null;
        why = "some of these labels changed since that version";
      }
    }
    return { key, special, name: e.name, description: e.description, count: e.count,
             dap: e.delta_ap, href: query ? patchesHref(ctx.dataset, query, ctx.runName, scope.slice) : null,
             why };
  }));
}

function draw(chart, rows) {
  const names = rows.map((r) => (r.special ? `${r.key.toUpperCase()} (all)` : r.key));
  chart.setOption({
    animation: false, backgroundColor: "transparent",
    grid: { left: 64, right: 92, top: 6, bottom: 28 },
    tooltip: { renderMode: "richText", backgroundColor: "#0a0c10", borderColor: LINE,
               textStyle: { color: TEXT }, trigger: "item",
               formatter: (p) => { const r = rows[p.dataIndex];
                 return `${r.name}: dAP50 ${r.dap.toFixed(3)} · ${r.count} error${r.count === 1 ? "" : "s"}\n` +
                        `${r.description}\n${r.href ? "click to open them" : r.why}`; } },
    xAxis: { type: "value", min: 0, axisLine: { lineStyle: { color: LINE } },
             axisLabel: { color: MUTED }, splitLine: { lineStyle: { color: LINE } } },
    yAxis: { type: "category", data: names, inverse: true, axisLabel: { color: TEXT },
             axisLine: { lineStyle: { color: LINE } } },
    series: [{
      type: "bar", cursor: "pointer", barMaxWidth: 18,
      data: rows.map((r) => ({ value: Math.max(r.dap, 0),
                               itemStyle: { color: r.special ? "#8c93a3" : "#ff6b6b" } })),
      label: { show: true, position: "right", color: TEXT,
               formatter: (p) => `${rows[p.dataIndex].dap.toFixed(3)} · ${rows[p.dataIndex].count}` },
    }],
  }, true);
  chart.off("click");
  chart.on("click", (p) => { const r = rows[p.dataIndex]; if (r && r.href) location.assign(r.href); });
}

function counts(rows) {
  return rows.map((r) => {
    const n = r.href
      ? h("a", { class: "failure-n", "data-key": r.key, href: r.href }, r.count.toLocaleString())
      : h("span", { class: "failure-n", "data-key": r.key, title: r.why || null }, r.count.toLocaleString());
    return h("li", { "data-key": r.key }, n,
             h("span", { class: "failure-name" }, r.special ? `${r.key.toUpperCase()} (all)` : r.name),
             h("span", { class: "muted" }, r.why ? `${r.description} (no link: ${r.why})` : r.description));
  });
}

let tideChart = null;
window.addEventListener("resize", () => tideChart && tideChart.resize());

/** Fetch and draw the breakdown for `scope`; `isCurrent()` says the page still shows
 * that scope (a later change wins). */
export async function showTide(scope, ctx, isCurrent) {
  const el = document.getElementById("tide-chart");
  const note = document.getElementById("tide-note");
  const list = document.getElementById("tide-counts");
  try {
    // More ids than fit in a link are never used: ask for no more (at millions of boxes
    // the full lists would be tens of MB).
    const out = await api(`/runs/${encodeURIComponent(ctx.runId)}/errors` +
                          apiSearch(scope, { max_ids: MAX_IDS }));
    const rows = await bars(out, ctx, scope);
    if (!isCurrent()) return;
    if (!tideChart) tideChart = echarts.init(el, null, { renderer: "canvas" });
    draw(tideChart, rows);
    list.replaceChildren(...counts(rows));
    // What each bar shows and where it leads, for keyboard-free checks of the page.
    el.dataset.bars = JSON.stringify(rows.map((r, i) => {
      const [x, y] = tideChart.convertToPixel({ seriesIndex: 0 }, [Math.max(r.dap, 0) / 2, i]);
      return { key: r.key, dap: r.dap, count: r.count, href: r.href, x, y };
    }));
    note.className = "muted chart-note";
    note.textContent = `AP50 ${out.ap.toFixed(3)} on ${out.num_ground_truth.toLocaleString()} ` +
      `objects and ${out.num_predictions.toLocaleString()} predictions. Bars: the AP50 gained ` +
      "by fixing each kind of error alone (they need not add up); labels: dAP · count. " +
      "FP (all) / FN (all): every false positive / negative fixed at once. " +
      `t_f = ${out.config.pos_threshold} (a match), t_b = ${out.config.background_threshold} ` +
      "(below it, background).";
    el.dataset.loaded = `${scope.slice}|${scope.version}|${scope.query}`;
  } catch (err) {
    if (!isCurrent()) return;
    note.className = "chart-note error";
    note.textContent = `Error breakdown: ${err.message}`;
  }
}
