/**
 * Schedule charts as standalone SVG: panels of line series with labelled,
 * readable axes. No browser and no plotting library: what `lrbridge plot`
 * writes and the README shows.
 */

export interface Series {
  label: string;
  /** values[k] is the value at step k. */
  values: ArrayLike<number>;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  /** Left axis label, e.g. "lr". */
  yLabel: string;
  series: Series[];
  log?: boolean;
}

export interface ChartOptions {
  columns?: number;
  panelWidth?: number;
  panelHeight?: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const MARGIN = { left: 62, right: 24, top: 26, bottom: 38 };

/**
 * Tick labels that stay readable across decades: 1e-5 reads "1e-5", not "0"
 * (lrs span several orders of magnitude).
 */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) {
    const [m, e] = v.toExponential(3).split("e");
    return `${trimZeros(m)}e${Number(e)}`;
  }
  return trimZeros(v.toPrecision(4));
}

function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/** About `target` round ticks (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function linearTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

/** Decades covering [lo, hi] (both > 0). */
export function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    const t = 10 ** e;
    if (t >= lo * (1 - 1e-12) && t <= hi * (1 + 1e-12)) ticks.push(Number(t.toPrecision(1)));
  }
  return ticks.length ? ticks : [lo, hi];
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const num = (v: number) => (Math.round(v * 100) / 100).toString();

/**
 * The points drawn for one series: with more steps than pixel columns, each
 * column keeps its first, lowest, highest and last value in step order, so
 * restarts and spikes survive.
 */
export function decimate(values: ArrayLike<number>, columns: number): [number, number][] {
  const n = values.length;
  const pts: [number, number][] = [];
  if (n <= columns * 2) {
    for (let k = 0; k < n; k++) pts.push([k, values[k]]);
    return pts;
  }
  const per = n / columns;
  for (let c = 0; c < columns; c++) {
    const a = Math.floor(c * per);
    const b = Math.min(n, Math.floor((c + 1) * per));
    if (a >= b) continue;
    let lo = a;
    let hi = a;
    for (let k = a; k < b; k++) {
      if (values[k] < values[lo]) lo = k;
      if (values[k] > values[hi]) hi = k;
    }
    for (const k of [...new Set([a, lo, hi, b - 1])].sort((x, y) => x - y)) pts.push([k, values[k]]);
  }
  return pts;
}

function panelSvg(p: Panel, x0: number, y0: number, w: number, h: number): string {
  const iw = w - MARGIN.left - MARGIN.right;
  const ih = h - MARGIN.top - MARGIN.bottom;
  const steps = Math.max(1, ...p.series.map((s) => s.values.length - 1));
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of p.series) {
    for (let k = 0; k < s.values.length; k++) {
      const v = s.values[k];
      if (!Number.isFinite(v) || (p.log && v <= 0)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!Number.isFinite(lo)) [lo, hi] = p.log ? [1e-3, 1] : [0, 1];
  const log = p.log === true;
  if (!log && lo > 0 && lo < hi / 3) lo = 0;
  if (hi === lo) [lo, hi] = log ? [lo / 2, hi * 2] : [lo - Math.abs(lo || 1) * 0.1, hi + Math.abs(hi || 1) * 0.1];
  const yTicks = log ? logTicks(lo, hi) : linearTicks(lo, hi);
  if (!log) {
    lo = Math.min(lo, yTicks[0]);
    hi = Math.max(hi, yTicks[yTicks.length - 1]);
  }
  const f = (v: number) => (log ? Math.log10(v) : v);
  const sx = (k: number) => x0 + MARGIN.left + (k / steps) * iw;
  const sy = (v: number) => y0 + MARGIN.top + ih - ((f(v) - f(lo)) / (f(hi) - f(lo))) * ih;
  const out: string[] = [];
  const left = x0 + MARGIN.left;
  const bottom = y0 + MARGIN.top + ih;
  out.push(`<g class="panel" data-title="${esc(p.title)}">`);
  out.push(`<text x="${num(left + iw / 2)}" y="${num(y0 + 17)}" text-anchor="middle" class="title">${esc(p.title)}</text>`);
  for (const t of yTicks) {
    const y = num(sy(t));
    out.push(`<line x1="${num(left)}" x2="${num(left + iw)}" y1="${y}" y2="${y}" class="grid"/>`);
    out.push(`<text x="${num(left - 5)}" y="${y}" dy="0.32em" text-anchor="end">${formatTick(t)}</text>`);
  }
  for (const t of linearTicks(0, steps, 4)) {
    const x = num(sx(t));
    out.push(`<line x1="${x}" x2="${x}" y1="${num(bottom)}" y2="${num(bottom + 4)}" class="axis"/>`);
    out.push(`<text x="${x}" y="${num(bottom + 15)}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  out.push(`<rect x="${num(left)}" y="${num(y0 + MARGIN.top)}" width="${num(iw)}" height="${num(ih)}" class="frame"/>`);
  out.push(`<text x="${num(left + iw / 2)}" y="${num(bottom + 31)}" text-anchor="middle" class="label">step</text>`);
  out.push(
    `<text transform="translate(${num(x0 + 13)},${num(y0 + MARGIN.top + ih / 2)}) rotate(-90)" text-anchor="middle" class="label">${esc(p.yLabel)}${log ? " (log)" : ""}</text>`,
  );
  p.series.forEach((s, i) => {
    const pts = decimate(s.values, Math.max(1, Math.round(iw)))
      .filter(([, v]) => Number.isFinite(v) && (!log || v > 0))
      .map(([k, v]) => `${num(sx(k))},${num(sy(v))}`)
      .join(" ");
    const dash = s.dashed ? ` stroke-dasharray="5 3"` : "";
    out.push(
      `<polyline data-series="${esc(s.label)}" points="${pts}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6"${dash}/>`,
    );
  });
  if (p.series.length > 1) {
    p.series.forEach((s, i) => {
      const y = y0 + MARGIN.top + 12 + i * 13;
      const x = left + iw - 8;
      out.push(`<line x1="${num(x - 18)}" x2="${num(x - 4)}" y1="${num(y - 3)}" y2="${num(y - 3)}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`);
      out.push(`<text x="${num(x - 22)}" y="${num(y)}" text-anchor="end" class="legend">${esc(s.label)}</text>`);
    });
  }
  out.push("</g>");
  return out.join("\n");
}

/** A grid of panels as one SVG document. */
export function chartSvg(panels: Panel[], opts: ChartOptions = {}): string {
  const w = opts.panelWidth ?? 420;
  const h = opts.panelHeight ?? 240;
  const cols = Math.max(1, Math.min(opts.columns ?? Math.min(3, panels.length), panels.length));
  const rows = Math.ceil(panels.length / cols);
  const body = panels.map((p, i) => panelSvg(p, (i % cols) * w, Math.floor(i / cols) * h, w, h)).join("\n");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w * cols}" height="${h * rows}" viewBox="0 0 ${w * cols} ${h * rows}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`,
    "<style>.grid{stroke:#e5e5e5}.axis{stroke:#555}.frame{fill:none;stroke:#555}.title{font-size:13px;font-weight:bold}.label{font-size:11px;fill:#333}.legend{font-size:10px}</style>",
    `<rect width="100%" height="100%" fill="white"/>`,
    body,
    "</svg>",
    "",
  ].join("\n");
}
