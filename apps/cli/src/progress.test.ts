import { describe, expect, it } from 'vitest';
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
});
