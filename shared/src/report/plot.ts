/**
 * Line charts as standalone SVG (no dependencies), for the results people look at: metrics over
 * rounds (`simulate --plot`) and loss over epochs (`train --plot`). One panel per metric group.
 */

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

export interface Panel {
  title: string;
  xLabel: string;
  series: Series[];
  /** Fixed y range (e.g. [0, 1] for AUC); otherwise fitted to the data with a margin. */
  yRange?: [number, number];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(lo: number, hi: number, n = 5): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Tick labels with as many decimals as the tick step needs (0.001 steps → 3 decimals). */
function fmt(v: number, all: number[]): string {
  const step = all.length > 1 ? Math.abs((all[1] as number) - (all[0] as number)) : Math.abs(v) || 1;
  const decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(step))));
  return v.toFixed(decimals);
}

const LEGEND_ROW = 16;

/** Legend entries flowed left to right in rows of `width` (text width estimated at 6.2 px a character). */
export function legendLayout(names: readonly string[], width: number): { rows: number; at: { x: number; row: number }[] } {
  const at: { x: number; row: number }[] = [];
  let x = 0;
  let row = 0;
  for (const name of names) {
    const entry = 14 + name.length * 6.2 + 16;
    if (x > 0 && x + entry > width) {
      row++;
      x = 0;
    }
    at.push({ x, row });
    x += entry;
  }
  return { rows: names.length ? row + 1 : 0, at };
}

function renderPanel(p: Panel, x0: number, y0: number, w: number, h: number): string {
  const pts = p.series.flatMap((s) => s.points).filter((q) => Number.isFinite(q.y) && Number.isFinite(q.x));
  if (pts.length === 0) return `<text x="${x0 + w / 2}" y="${y0 + h / 2}" text-anchor="middle" class="t">${esc(p.title)}: no data</text>`;
  const xs = pts.map((q) => q.x);
  const ys = pts.map((q) => q.y);
  let [ylo, yhi] = p.yRange ?? [Math.min(...ys), Math.max(...ys)];
  if (!p.yRange) {
    const pad = (yhi - ylo || Math.abs(yhi) || 1) * 0.08;
    ylo -= pad;
    yhi += pad;
  }
  const xlo = Math.min(...xs);
  const xhi = Math.max(...xs) === xlo ? xlo + 1 : Math.max(...xs);
  // The legend goes under the axis, in rows, so that it never hides a line.
  const legend = legendLayout(p.series.map((s) => s.name), w - 56 - 12);
  const L = 56, R = 12, T = 28, B = 40 + legend.rows * LEGEND_ROW;
  const px = (x: number) => x0 + L + ((x - xlo) / (xhi - xlo)) * (w - L - R);
  const py = (y: number) => y0 + T + (1 - (y - ylo) / (yhi - ylo)) * (h - T - B);
  const out: string[] = [`<text x="${x0 + L}" y="${y0 + 18}" class="h">${esc(p.title)}</text>`];
  const yt = ticks(ylo, yhi);
  for (const t of yt) out.push(`<line x1="${px(xlo)}" x2="${px(xhi)}" y1="${py(t)}" y2="${py(t)}" class="g"/><text x="${x0 + L - 6}" y="${py(t) + 4}" text-anchor="end" class="t">${fmt(t, yt)}</text>`);
  const xt = ticks(xlo, xhi, Math.min(10, Math.max(1, Math.round(xhi - xlo))));
  for (const t of xt) out.push(`<text x="${px(t)}" y="${y0 + h - B + 16}" text-anchor="middle" class="t">${fmt(t, xt)}</text>`);
  out.push(`<text x="${x0 + L + (w - L - R) / 2}" y="${y0 + h - B + 34}" text-anchor="middle" class="t">${esc(p.xLabel)}</text>`);
  out.push(`<rect x="${x0 + L}" y="${y0 + T}" width="${w - L - R}" height="${h - T - B}" class="f"/>`);
  p.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length] as string;
    const valid = s.points.filter((q) => Number.isFinite(q.y));
    if (valid.length === 0) return;
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${valid.map((q) => `${px(q.x).toFixed(1)},${py(q.y).toFixed(1)}`).join(' ')}"/>`);
    for (const q of valid) out.push(`<circle cx="${px(q.x).toFixed(1)}" cy="${py(q.y).toFixed(1)}" r="2.5" fill="${c}"/>`);
  });
  // Every series keeps its colour and its legend entry, drawn or not (a series without data is still named).
  p.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length] as string;
    const at = legend.at[i] as { x: number; row: number };
    const ly = y0 + h - B + 40 + (at.row + 1) * LEGEND_ROW - 4;
    out.push(`<rect x="${x0 + L + at.x}" y="${ly - 9}" width="10" height="10" fill="${c}"/><text x="${x0 + L + at.x + 14}" y="${ly}" class="t">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** Panels in a grid of `columns`, as one SVG document. */
export function renderChart(title: string, panels: Panel[], columns = 2): string {
  const w = 460, h = 280;
  const rows = Math.ceil(panels.length / columns);
  const width = w * Math.min(columns, panels.length);
  const height = 36 + h * rows;
  const body = panels.map((p, i) => renderPanel(p, (i % columns) * w, 36 + Math.floor(i / columns) * h, w, h)).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>.t{font-size:11px;fill:#444}.h{font-size:13px;font-weight:bold;fill:#222}.g{stroke:#e5e5e5}.f{fill:none;stroke:#999}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="24" font-size="16" font-weight="bold" fill="#111">${esc(title)}</text>
${body}
</svg>
`;
}
