import { describe, expect, it } from 'vitest';
import { legendLayout, renderChart } from './plot';

describe('renderChart', () => {
  it('draws one polyline per series with points mapped into the panel, skipping non-finite values', () => {
    const svg = renderChart('t', [
      { title: 'AUC', xLabel: 'round', yRange: [0, 1], series: [{ name: 'auc_roc', points: [{ x: 1, y: 0 }, { x: 2, y: 0.5 }, { x: 3, y: 1 }] }] },
      { title: 'loss', xLabel: 'round', series: [{ name: 'val', points: [{ x: 1, y: 2 }, { x: 2, y: Number.NaN }, { x: 3, y: 1 }] }] },
    ]);
    expect(svg.startsWith('<?xml')).toBe(true);
    const lines = [...svg.matchAll(/<polyline[^>]*points="([^"]+)"/g)].map((m) => m[1]!.split(' ').map((p) => p.split(',').map(Number)));
    expect(lines).toHaveLength(2);
    const auc = lines[0]!;
    expect(auc).toHaveLength(3);
    // y = 0 at the bottom, 1 at the top, 0.5 halfway; x increasing
    expect(auc[0]![1]!).toBeGreaterThan(auc[1]![1]!);
    expect(auc[1]![1]!).toBeCloseTo((auc[0]![1]! + auc[2]![1]!) / 2, 1);
    expect(auc[2]![0]!).toBeGreaterThan(auc[0]![0]!);
    expect(lines[1]).toHaveLength(2); // NaN skipped
    expect(svg).toContain('auc_roc');
  });

  it('escapes titles', () => {
    expect(renderChart('a <b> & c', [])).toContain('a &lt;b&gt; &amp; c');
  });

  it('puts the legend under the plot area, wrapping into rows, never over a line', () => {
    const names = ['fedavg ε=∞', 'fedavg ε=8', 'fedprox ε=∞', 'fedprox ε=8', 'fedadam ε=∞', 'fedadam ε=8'];
    const layout = legendLayout(names, 392);
    expect(layout.rows).toBeGreaterThan(1);
    for (const a of layout.at) expect(a.x).toBeLessThan(392);
    expect(legendLayout([], 392).rows).toBe(0);
    const svg = renderChart('t', [{ title: 'AUC', xLabel: 'round', yRange: [0, 1], series: names.map((name, i) => ({ name, points: [{ x: 1, y: i / 10 }, { x: 2, y: 0.9 }] })) }]);
    const frame = /<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" class="f"\/>/.exec(svg)!;
    const bottom = Number(frame[1]) + Number(frame[2]);
    const entries = [...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="10" height="10"/g)].map((m) => Number(m[1]));
    expect(entries).toHaveLength(names.length);
    for (const y of entries) expect(y).toBeGreaterThan(bottom + 20); // below the plot and its tick labels
    for (const name of names) expect(svg).toContain(`>${name}</text>`);
  });
});
