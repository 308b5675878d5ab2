// Adversarial suite, HE (issue 13): one hostile hospital among three and five, real coordinator,
// the real HE client code for everyone, one round each (HE is the slow mode). num_samples 2^32 is refused before encryption; a key holder
// that returns a NaN or shifted mean at decryption is refused by name and another key holder decrypts.
import { afterEach, describe, expect, it } from 'vitest';
import { weightsToBytes } from '@fedcare/shared/model';
import type { StageResult } from '@fedcare/shared/protocol';
import { auditNaming, cohort, HONEST_SAMPLES, secureBehaviour, type Cohort } from './harness';
import { CLIP, expectNearHonest, secureRun } from './secure';

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** The decrypting hospital's lie: `f` of the true mean. */
function lieAtDecrypt(f: (mean: Float32Array) => Float32Array) {
  return (r: StageResult): StageResult => {
    if (r.stage !== 'he-decrypt') return r;
    const mean = new Float32Array(r.mean.buffer.slice(r.mean.byteOffset, r.mean.byteOffset + r.mean.byteLength));
    return { ...r, mean: weightsToBytes(f(mean)) };
  };
}

describe.each([3, 5])('HE, one hostile hospital among %i', (n) => {
  it('num_samples 2^32: refused by name before encryption; the run completes (before: the run ended as an internal error)', async () => {
    current = await cohort(n, {}, { secure: true });
    current.hostile.behaviour = secureBehaviour(current.hostile, { weight: 2 ** 32 });
    await secureRun(current, n, 'he', 1);
    expectNearHonest(current, 1e-3, [1]);
    expect(JSON.stringify(await auditNaming(current, current.hostile.hospitalId))).toMatch(/num_samples: 4294967296 is above H\d's bound/);
  });

  it.each([
    { lie: 'NaN', f: (m: Float32Array) => m.map(() => Number.NaN), before: 'the run crashed' },
    { lie: '+42', f: (m: Float32Array) => m.map((x) => x + 42), before: 'the model moved by 42' },
  ])('the key holder decrypts to a $lie mean: refused by name, the next key holder decrypts (before: $before)', async ({ f }) => {
    // H1 is the key holder (the first contributor); its own update is honest, only its decryption lies.
    current = await cohort(n, {}, { secure: true, hostile: 'first' });
    current.hostile.behaviour = secureBehaviour(current.hostile, { reply: lieAtDecrypt(f) });
    await secureRun(current, n, 'he', 1);
    // Its honest update is in the sum: it moves the mean by at most its weight share × 2R (+ the HE quantisation error).
    const total = current.all.reduce((s, h) => s + HONEST_SAMPLES(h.hospitalId), 0);
    expectNearHonest(current, (HONEST_SAMPLES('H1') / total) * 2 * CLIP + 1e-3, [1]);
    const named = await auditNaming(current, 'H1');
    expect(named.filter((e) => e.action === 'he.decrypt.refused')).toHaveLength(1);
  });
});
