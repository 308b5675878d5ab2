// Adversarial suite, SecAgg+ (issue 13): one hostile hospital among three and five, real
// coordinator, the real SecAgg+ client code for everyone. The hostile hospital inflates the weight
// it masks its update with; the coordinator bounds it before masking, names it, and the run goes on.
import { afterEach, describe, expect, it } from 'vitest';
import { auditNaming, cohort, secureBehaviour, type Cohort } from './harness';
import { CLIP, expectNearHonest, secureRun } from './secure';

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** The attacker's update: +R on every coordinate (the most the client's clipping lets through). */
const pull = (instr: { weights: Uint8Array }) => new Float32Array(instr.weights.byteLength / 4).fill(CLIP);

describe.each([3, 5])('SecAgg+, one hostile hospital among %i', (n) => {
  it('num_samples 2^31: refused by name before masking; the run completes on the honest sum (before: the run failed)', async () => {
    current = await cohort(n, {}, { secure: true });
    current.hostile.behaviour = secureBehaviour(current.hostile, { weight: 2 ** 31, delta: pull });
    await secureRun(current, n, 'secagg');
    expectNearHonest(current, 1e-5);
    const named = await auditNaming(current, current.hostile.hospitalId);
    expect(JSON.stringify(named)).toMatch(/num_samples: 2147483648 is above H\d's bound/);
  });

  it('a weight far above the records it declared at sign-in: refused by name (before: its update outweighed everyone)', async () => {
    current = await cohort(n, {}, { secure: true, declare: true });
    current.hostile.behaviour = secureBehaviour(current.hostile, { weight: 1_000_000, delta: pull });
    await secureRun(current, n, 'secagg');
    expectNearHonest(current, 1e-5);
    const named = await auditNaming(current, current.hostile.hospitalId);
    expect(JSON.stringify(named)).toMatch(/num_samples: 1000000 is above H\d's bound \d+ \(the \d+ records it declared at sign-in\)/);
  });
});
