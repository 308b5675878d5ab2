import { describe, expect, it } from 'vitest';
import { appendLog, createPortalStore, initialPortalState, reduceActivity, trainingFraction } from './store';

const RUN = 'run-20260101000000-abcdef01';

describe('portal store', () => {
  it('turns sent train and evaluate results into one row per round with the local figures', () => {
    const store = createPortalStore();
    const apply = (a: Parameters<typeof reduceActivity>[1]) => store.setState(reduceActivity(store.getState(), a));
    apply({ kind: 'stage', stage: 'train', run_id: RUN, round: 1 });
    expect(store.getState().stage).toEqual({ stage: 'train', run_id: RUN, round: 1, state: 'working' });
    apply({
      kind: 'sent',
      stage: 'train',
      run_id: RUN,
      round: 1,
      result: { run_id: RUN, round: 1, stage: 'train', weights: new Uint8Array(4), weights_sha256: 'a'.repeat(64), num_samples: 40, metrics: { train_loss: 0.9, train_accuracy: 0.6, train_seconds: 2, local_epoch_loss: Number.NaN, privacy_epsilon: 0.42, privacy_delta: 1e-5 } },
    });
    apply({
      kind: 'sent',
      stage: 'evaluate',
      run_id: RUN,
      round: 1,
      result: { run_id: RUN, round: 1, stage: 'evaluate', num_examples: 10, metrics: { test_loss: 1.1, test_accuracy: 0.5, auc_roc: 0.7, f1_score: 0.4 } },
    });
    apply({ kind: 'declined', stage: 'train', run_id: RUN, round: 2, reason: 'training stopped by the hospital' });
    const s = store.getState();
    expect(s.rounds).toEqual([{ run_id: RUN, round: 1, num_samples: 40, train_loss: 0.9, train_accuracy: 0.6, train_seconds: 2, test_loss: 1.1, test_accuracy: 0.5, auc_roc: 0.7, f1: 0.4, epsilon: 0.42, delta: 1e-5 }]);
    expect(s.stage).toEqual({ stage: 'train', run_id: RUN, round: 2, state: 'declined', reason: 'training stopped by the hospital' });
  });

  it('measures local training progress over epochs × batches', () => {
    expect(trainingFraction(undefined)).toBeUndefined();
    expect(trainingFraction({ stage: 'evaluate', round: 1 })).toBeUndefined();
    expect(trainingFraction({ stage: 'train', round: 1, train: { epoch: 2, epochs: 2, batch: 1, batches: 4, loss: 1 } })).toBe(5 / 8);
    expect(trainingFraction({ stage: 'train', round: 1, train: { epoch: 1, epochs: 1, batch: 3, batches: 3, loss: 1 } })).toBe(1);
  });

  it('keeps the last 200 log lines', () => {
    let s = { ...initialPortalState };
    for (let i = 0; i < 205; i++) s = { ...s, ...appendLog(s, `m${i}`, new Date(0)) };
    expect(s.log).toHaveLength(200);
    expect(s.log[0]?.message).toBe('m5');
  });
});
