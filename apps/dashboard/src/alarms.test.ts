import { describe, expect, it } from 'vitest';
import { computeAlarms, maxEpsilon, type AlarmInput } from './alarms';

const calm: AlarmInput = { runStatus: 'running', testAccuracy: 0.8, epsilon: null, activeClients: 3 };

describe('computeAlarms (seed spec 6.3)', () => {
  it.each<[string, Partial<AlarmInput>, string[]]>([
    ['none when healthy', {}, []],
    ['run failed', { runStatus: 'failed', runReason: 'round 3 failed' }, ['training_failures']],
    ['accuracy below 0.60', { testAccuracy: 0.59 }, ['low_accuracy']],
    ['accuracy at 0.60 is fine', { testAccuracy: 0.6 }, []],
    ['unknown accuracy is no alarm', { testAccuracy: null }, []],
    ['ε above 5', { epsilon: 5.01 }, ['privacy_budget_exceeded']],
    ['ε of exactly 5 is fine', { epsilon: 5 }, []],
    ['ε null (not private) is no alarm', { epsilon: null }, []],
    ['one active client while running', { activeClients: 1 }, ['client_dropout']],
    ['two active clients is fine', { activeClients: 2 }, []],
    ['no clients while idle is no alarm', { runStatus: 'idle', activeClients: 0 }, []],
    ['several at once', { runStatus: 'running', testAccuracy: 0.5, epsilon: 8, activeClients: 0 }, ['low_accuracy', 'privacy_budget_exceeded', 'client_dropout']],
  ])('%s', (_name, patch, want) => {
    expect(computeAlarms({ ...calm, ...patch }).map((a) => a.id)).toEqual(want);
  });

  it('names the failure reason', () => {
    expect(computeAlarms({ ...calm, runStatus: 'failed', runReason: 'boom' })[0]?.message).toContain('boom');
  });
});

describe('maxEpsilon', () => {
  it('takes the largest ε of the round and its hospitals, null when none', () => {
    expect(maxEpsilon({ privacy_epsilon: null }, { H1: { privacy_epsilon: null } })).toBeNull();
    expect(maxEpsilon({ privacy_epsilon: 1 }, { H1: { privacy_epsilon: 6 }, H2: {} })).toBe(6);
  });
});
