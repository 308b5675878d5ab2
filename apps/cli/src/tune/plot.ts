/**
 * `fedcare tune --plot`: a parallel-coordinates chart as standalone SVG. One vertical axis per
 * searched parameter (normalised: log scale for loguniform, the list's order for choices) and a last
 * one for the validation AUC-ROC; one polyline per trial, coloured from red (worst) to blue (best),
 * the best trial drawn last and thickest.
 */
import { normalise, type ParamValue, type Space } from './space';

export interface PlotTrial {
  id: number;
  params: Record<string, ParamValue>;
  /** Validation AUC-ROC at the highest rung reached (NaN: failed). */
  valAuc: number;
  /** Rounds of the highest rung reached. */
  rounds: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function label(v: ParamValue): string {
  if (typeof v === 'string') return v;
  return Math.abs(v) < 0.01 && v !== 0 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

export function parallelCoordinates(title: string, space: Readonly<Space>, trials: readonly PlotTrial[]): string {
  const keys = Object.keys(space);
  const W = Math.max(640, 120 * (keys.length + 1) + 80);
  const H = 420;
  const top = 60;
  const bottom = H - 50;
  const left = 60;
  const step = (W - 2 * left) / keys.length;
  const x = (i: number) => left + i * step;
  const y = (u: number) => bottom - Math.min(1, Math.max(0, u)) * (bottom - top);
  const aucs = trials.map((t) => t.valAuc).filter(Number.isFinite);
  const lo = aucs.length ? Math.min(...aucs) : 0;
  const hi = aucs.length ? Math.max(...aucs) : 1;
  const aucU = (v: number) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
  const colour = (v: number) => {
    if (!Number.isFinite(v)) return '#bbbbbb';
    const u = aucU(v);
    return `rgb(${Math.round(214 * (1 - u) + 31 * u)},${Math.round(39 * (1 - u) + 119 * u)},${Math.round(40 * (1 - u) + 180 * u)})`;
  };
  const best = trials.filter((t) => Number.isFinite(t.valAuc)).sort((a, b) => b.valAuc - a.valAuc)[0];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  const axes = [...keys, 'val AUC-ROC'];
  axes.forEach((k, i) => {
    out.push(`<line x1="${x(i)}" y1="${top}" x2="${x(i)}" y2="${bottom}" stroke="#444"/>`);
    out.push(`<text x="${x(i)}" y="${top - 12}" text-anchor="middle" font-weight="bold">${esc(k)}</text>`);
    const p = space[k];
    const ticks: [number, string][] = p
      ? p.kind === 'choice'
        ? p.values.map((v) => [normalise(p, v), label(v)])
        : [
            [0, label(p.low)],
            [1, label(p.high)],
          ]
      : [
          [0, lo.toFixed(3)],
          [1, hi.toFixed(3)],
        ];
    for (const [u, t] of ticks) out.push(`<text x="${x(i) + 4}" y="${y(u) + 4}" fill="#555">${esc(t)}</text>`);
  });
  const ordered = [...trials.filter((t) => t !== best), ...(best ? [best] : [])];
  for (const t of ordered) {
    const pts = keys.map((k, i) => {
      const p = space[k];
      const v = t.params[k];
      return `${x(i).toFixed(1)},${y(p && v !== undefined ? normalise(p, v) : 0.5).toFixed(1)}`;
    });
    pts.push(`${x(keys.length).toFixed(1)},${y(Number.isFinite(t.valAuc) ? aucU(t.valAuc) : 0).toFixed(1)}`);
    const width = t === best ? 3 : 1.5;
    out.push(`<polyline data-trial="${t.id}" points="${pts.join(' ')}" fill="none" stroke="${colour(t.valAuc)}" stroke-width="${width}" stroke-opacity="0.85"><title>trial ${t.id}: val AUC-ROC ${Number.isFinite(t.valAuc) ? t.valAuc.toFixed(3) : 'failed'} after ${t.rounds} round(s)</title></polyline>`);
  }
  out.push(`<text x="${left}" y="${H - 14}" fill="#555">one line per trial; colour: validation AUC-ROC at the highest rung reached (red worst, blue best; grey failed); thick: best</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
