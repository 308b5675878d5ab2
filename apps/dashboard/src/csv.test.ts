import { describe, expect, it } from 'vitest';
import { csvField, exportFileName, metricColumns, roundsToCsv, roundsToJson } from './csv';
import type { RoundRow } from './metrics';

const rounds: RoundRow[] = [
  { round: 1, timestamp: '2025-01-01T00:00:00Z', metrics: { test_accuracy: 0.5, train_loss: 1.2, privacy_epsilon: null, zeta: 1 }, per_hospital: { H2: { accuracy: 0.4 }, H1: { accuracy: 0.6 } }, issues: [] },
  { round: 2, metrics: { test_accuracy: 0.7 }, per_hospital: {}, issues: [] },
];

describe('csv', () => {
  it.each([
    [null, ''],
    [1.5, '1.5'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=cmd|/C calc!A0', "'=cmd|/C calc!A0"],
  ])('csvField(%j) = %j', (v, want) => expect(csvField(v)).toBe(want));

  it('escapes a hospital-chosen metric name or hospital id that starts a formula (OWASP CSV injection)', () => {
    const evil: RoundRow[] = [{ round: 1, metrics: { '=HYPERLINK("http://x","y")': 1, test_accuracy: -0.5 }, per_hospital: { '@H9': { '+cmd': 2 } }, issues: [] }];
    const csv = roundsToCsv('run-1', evil);
    expect(csv.split('\r\n')[0]).toBe(`run_id,round_number,scope,timestamp,test_accuracy,'+cmd,"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csv).toContain("run-1,1,'@H9,,,2,");
    expect(csv).toContain('run-1,1,global,,-0.5,,1');
    for (const cell of csv.split(/[,\r\n]+/)) expect(cell).not.toMatch(/^[=+@]/);
  });

  it('orders columns: seed 6.1 names first, then the rest alphabetically', () => {
    expect(metricColumns(rounds)).toEqual(['train_loss', 'test_accuracy', 'privacy_epsilon', 'accuracy', 'zeta']);
  });

  it('writes a global row and one per hospital for each round, nulls as empty cells', () => {
    const lines = roundsToCsv('run-1', rounds).trimEnd().split('\r\n');
    expect(lines).toEqual([
      'run_id,round_number,scope,timestamp,train_loss,test_accuracy,privacy_epsilon,accuracy,zeta',
      'run-1,1,global,2025-01-01T00:00:00Z,1.2,0.5,,,1',
      'run-1,1,H1,2025-01-01T00:00:00Z,,,,0.6,',
      'run-1,1,H2,2025-01-01T00:00:00Z,,,,0.4,',
      'run-1,2,global,,,0.7,,,',
    ]);
  });

  it('JSON export round-trips the rounds', () => {
    const parsed = JSON.parse(roundsToJson('run-1', rounds, { status: 'completed' })) as { run_id: string; run: unknown; rounds: Array<{ round_number: number; metrics: Record<string, unknown> }> };
    expect(parsed.run_id).toBe('run-1');
    expect(parsed.run).toEqual({ status: 'completed' });
    expect(parsed.rounds.map((r) => r.round_number)).toEqual([1, 2]);
    expect(parsed.rounds[0]?.metrics.privacy_epsilon).toBeNull();
  });

  it('makes safe file names', () => {
    expect(exportFileName('run/1 x', 'csv')).toBe('fedcare-run_1_x-metrics.csv');
  });
});
