/**
 * Alarms of seed spec 6.3, computed from what the dashboard already holds (a pure function):
 *   training_failures        the run failed
 *   low_accuracy             global test accuracy of the latest round < 0.60
 *   privacy_budget_exceeded  ε > 5 (ε null = no differential privacy yet: shown as "not private", no alarm)
 *   client_dropout           fewer than 2 active clients while a run is running
 */
export type AlarmId = 'training_failures' | 'low_accuracy' | 'privacy_budget_exceeded' | 'client_dropout';

export interface Alarm {
  id: AlarmId;
  severity: 'critical' | 'warning';
  message: string;
}

export interface AlarmInput {
  /** Status of the current (or last) run; null when there has been none. */
  runStatus: 'idle' | 'running' | 'completed' | 'stopped' | 'failed' | null;
  runReason?: string | undefined;
  /** Global `test_accuracy` of the latest round, null when unknown. */
  testAccuracy: number | null;
  /** Largest ε spent (global or any hospital), null when not private. */
  epsilon: number | null;
  /** Hospitals connected and active, null when unknown. */
  activeClients: number | null;
}

export const LOW_ACCURACY_THRESHOLD = 0.6;
export const EPSILON_THRESHOLD = 5;
export const MIN_ACTIVE_CLIENTS = 2;

export function computeAlarms(i: AlarmInput): Alarm[] {
  const out: Alarm[] = [];
  if (i.runStatus === 'failed') {
    out.push({ id: 'training_failures', severity: 'critical', message: `Training failed${i.runReason ? `: ${i.runReason}` : ''}` });
  }
  if (i.testAccuracy !== null && Number.isFinite(i.testAccuracy) && i.testAccuracy < LOW_ACCURACY_THRESHOLD) {
    out.push({ id: 'low_accuracy', severity: 'warning', message: `Test accuracy ${i.testAccuracy.toFixed(3)} is below ${LOW_ACCURACY_THRESHOLD.toFixed(2)}` });
  }
  if (i.epsilon !== null && i.epsilon > EPSILON_THRESHOLD) {
    out.push({ id: 'privacy_budget_exceeded', severity: 'critical', message: `Privacy budget ε = ${Number.isFinite(i.epsilon) ? i.epsilon.toFixed(2) : '∞'} exceeds ${EPSILON_THRESHOLD}` });
  }
  if (i.runStatus === 'running' && i.activeClients !== null && i.activeClients < MIN_ACTIVE_CLIENTS) {
    out.push({ id: 'client_dropout', severity: 'critical', message: `Only ${i.activeClients} active client${i.activeClients === 1 ? '' : 's'} (fewer than ${MIN_ACTIVE_CLIENTS})` });
  }
  return out;
}

/** The largest finite ε among the round's global figure and each hospital's; null when none is private. */
export function maxEpsilon(global: Record<string, number | null>, perHospital: Record<string, Record<string, number | null>>): number | null {
  let max: number | null = null;
  for (const m of [global, ...Object.values(perHospital)]) {
    const e = m.privacy_epsilon;
    if (typeof e === 'number' && (max === null || e > max)) max = e;
  }
  return max;
}
