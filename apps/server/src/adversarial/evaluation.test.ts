// Adversarial suite, evaluation (issue 13): a self-reported num_examples set the stored AUC to
// 0.999, and one hospital's val_loss forced early stopping. num_examples is now bounded like
// num_samples (refused by name), and the best model and early stopping follow the median over
// hospitals of their val_loss (selection_aggregate), which one hospital cannot move.
import { afterEach, describe, expect, it } from 'vitest';
import type { EvaluateInstruction } from '../testing/fake-hospital';
import { auditNaming, baseConfig, cohort, runTo, type Cohort } from './harness';

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

describe.each([3, 5])('evaluation, one hostile hospital among %i', (n) => {
  it('num_examples 2^53 with AUC 0.999: refused by name; the stored AUC is the honest hospitals’', async () => {
    current = await cohort(n, {
      evaluate: async (instr, f) => {
        const honest = await f.honest(instr as EvaluateInstruction);
        if (honest.stage !== 'evaluate') return;
        await f.send('fl:result', { ...honest, num_examples: Number.MAX_SAFE_INTEGER, metrics: { ...honest.metrics, auc_roc: 0.999 } });
      },
    });
    const { summary, rounds } = await runTo(current, { ...baseConfig(n), rounds: 1 });
    expect(summary?.status, summary?.reason).toBe('completed');
    // The fake hospitals' honest AUC is 0.6 + 0.01·round.
    expect(rounds[0]!.metrics.auc_roc).toBeCloseTo(0.61, 6);
    expect(JSON.stringify(await auditNaming(current, `H${n}`))).toMatch(/num_examples: 9007199254740991 is above H\d's bound/);
  });

  it('a val_loss of 0 then 1e6: early stopping and the best round are unmoved (median over hospitals)', async () => {
    current = await cohort(n, {
      evaluate: async (instr, f) => {
        const honest = await f.honest(instr as EvaluateInstruction);
        if (honest.stage !== 'evaluate') return;
        // Within its bound and within range: only the value is hostile.
        await f.send('fl:result', { ...honest, num_examples: 1000, metrics: { ...honest.metrics, val_loss: instr.round === 1 ? 0 : 1e6 } });
      },
    });
    const { summary, rounds, run } = await runTo(current, { ...baseConfig(n), rounds: 3, early_stopping_patience: 1 });
    expect(summary?.status, summary?.reason).toBe('completed');
    expect(summary?.reason, 'no early stopping').toBeUndefined();
    expect(rounds).toHaveLength(3);
    // The honest val_loss falls every round (1/(round+1) + 0.01·k): the best round is the last.
    expect(run?.bestRound).toBe(3);
  });
});
