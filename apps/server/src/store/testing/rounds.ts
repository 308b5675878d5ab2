/**
 * Test fixtures: deterministic round commits, so a test (or a crash-test child process) can build
 * round N and later check, byte for byte, what the store holds for it.
 */
import { createHash } from 'node:crypto';
import type { RoundCommit } from '@fedcare/shared/fl';

/** Seed spec 6.1 metric names as the round engine records them (privacy fields 0/inf until DP). */
export const METRIC_NAMES = [
  'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'test_loss', 'test_accuracy',
  'auc_roc', 'auc_pr', 'f1_score', 'precision', 'recall',
  'accuracy_low_risk', 'accuracy_medium_risk', 'accuracy_high_risk',
  'num_participating_clients', 'aggregation_time_seconds', 'communication_bytes', 'round_duration_seconds',
  'epsilon', 'delta', 'performance_variance', 'min_hospital_accuracy', 'max_hospital_accuracy',
] as const;

export const HOSPITALS = ['H1', 'H2', 'H3'] as const;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Weights for `round`: `count` float32 values, distinct per round. */
export function weightsFor(round: number, count: number): Uint8Array {
  const f = new Float32Array(count);
  for (let i = 0; i < count; i++) f[i] = round + ((i * 2654435761) % 1000) / 1000;
  return new Uint8Array(f.buffer);
}

export function metricsFor(round: number): Record<string, number> {
  const m: Record<string, number> = {};
  METRIC_NAMES.forEach((name, i) => {
    m[name] = round * 100 + i + 0.25;
  });
  m.val_loss = 10 / round; // falls every round: every round is a new best unless the caller says otherwise
  m.epsilon = Number.POSITIVE_INFINITY;
  m.delta = 0;
  m.auc_pr = round % 3 === 0 ? Number.NaN : 0.5; // NaN must round-trip
  return m;
}

export interface CommitOptions {
  runId: string;
  round: number;
  /** float32 count of the weights. */
  weightCount?: number;
  checkpointEvery?: number;
  best?: boolean;
}

export function commitFor({ runId, round, weightCount = 64, checkpointEvery = 5, best }: CommitOptions): RoundCommit {
  const bytes = weightsFor(round, weightCount);
  const perHospital: Record<string, Record<string, number>> = {};
  for (const [i, h] of HOSPITALS.entries()) perHospital[h] = { test_accuracy: round / 100 + i, test_loss: 1 / round + i };
  return {
    runId,
    round,
    startedAt: new Date(Date.UTC(2025, 0, 1, 0, round)).toISOString(),
    completedAt: new Date(Date.UTC(2025, 0, 1, 0, round, 30)).toISOString(),
    metrics: metricsFor(round),
    perHospital,
    participation: [
      { hospitalId: 'H1', stage: 'train', status: 'ok', bytesUp: 1000 * round, bytesDown: 2000 * round },
      { hospitalId: 'H2', stage: 'train', status: round % 2 === 0 ? 'dropped' : 'ok', ...(round % 2 === 0 ? { reason: 'disconnect' } : {}), bytesUp: 10, bytesDown: 20 },
      { hospitalId: 'H3', stage: 'train', status: 'ok', bytesUp: 3, bytesDown: 4 },
      { hospitalId: 'H1', stage: 'evaluate', status: 'ok', bytesUp: 5, bytesDown: 6 },
    ],
    model: { bytes, sha256: sha256Hex(bytes) },
    strategyState: new TextEncoder().encode(JSON.stringify({ step: round })),
    checkpoint: round % checkpointEvery === 0,
    best: best ?? true,
  };
}
