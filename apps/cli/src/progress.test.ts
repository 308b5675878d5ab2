import { describe, expect, it, vi } from 'vitest';
import { ProgressBar } from './progress';

/** A non-TTY stream that keeps what is written. */
function sink(): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = { isTTY: false, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

describe('ProgressBar', () => {
  it('off a terminal prints a line per 10 % and the end', () => {
    const s = sink();
    const bar = new ProgressBar('rounds', 4, s.stream);
    for (let i = 1; i <= 4; i++) bar.update(i, `round ${i}`);
    const lines = s.text().trim().split('\n');
    expect(lines.map((l) => /(\d+)% (\d)\/4/.exec(l)?.slice(1))).toEqual([
      ['25', '1'],
      ['50', '2'],
      ['75', '3'],
      ['100', '4'],
    ]);
  });

  it('stop() ends where the job stopped, not at 100 %', () => {
    const s = sink();
    const bar = new ProgressBar('federation', 8, s.stream);
    bar.update(2, 'round 2');
    bar.stop();
    expect(s.text().trim().split('\n').at(-1)).toBe('federation stopped at 2/8');
    expect(s.text()).not.toContain('100%');
  });

  it('a resumed bar estimates the time left from the work it saw, not from the rounds done before', () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    try {
      const s = sink();
      const bar = new ProgressBar('federation', 10, s.stream, true, 8);
      vi.setSystemTime(new Date('2026-01-01T00:00:10Z'));
      bar.update(9);
      // round 9 took 10 s here, so ~10 s for round 10 (not 10 s / 0.9 − 10 s ≈ 1 s, as if rounds 1–8 had been quick)
      expect(/eta (\d+)s/.exec(s.text())?.[1]).toBe('10');
      bar.stop();
      expect(s.text().trim().split('\n').at(-1)).toBe('federation stopped at 9/10');
    } finally {
      vi.useRealTimers();
    }
  });
});
