// Adversarial suite, HE (issue 13): one hostile hospital among three and five, real coordinator,
// the real HE client code for everyone, one round each (HE is the slow mode). num_samples 2^32 is refused before encryption; a key holder
// that decrypts its slice of the sum to impossible slots, or to a mean beyond ±clip, is refused by name and another hospital decrypts that slice.
import { afterEach, describe, expect, it } from 'vitest';
import type { StageResult } from '@fedcare/shared/protocol';
import { auditNaming, cohort, HONEST_SAMPLES, secureBehaviour, type Cohort } from './harness';
import { CLIP, expectNearHonest, secureRun } from './secure';

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** The decrypting hospital's lie: `f` of the slots of its slice (quantised sums, N per ciphertext). */
function lieAtDecrypt(f: (slots: Uint32Array) => Uint32Array) {
  return (r: StageResult): StageResult => {
    if (r.stage !== 'he-decrypt') return r;
    const slots = f(new Uint32Array(r.slots.slice().buffer));
    return { ...r, slots: new Uint8Array(slots.buffer) };
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
    // Slots no sum of n uploads can hold: refused as the slice arrives.
    { lie: 'slots above n·(2^b − 1)', f: (s: Uint32Array) => s.fill(0xffff_ffff), refusal: /"action":"fl:result","outcome":"rejected".*OUT_OF_BOUNDS.*slots: slot 0 holds 4294967295, above/s, before: 'the run crashed' },
    // Every slot at the largest possible sum: in bounds, but the mean comes out beyond ±clip (weights 21–25, so n·W / Σw > 1).
    { lie: 'a mean beyond ±clip', f: (s: Uint32Array) => s.fill(n * (2 ** 25 - 1)), refusal: /he\.decrypt\.refused.*mean\[0\] is [\d.]+, outside the clip range ±0\.5/s, before: 'the model moved by 42' },
  ])('the key holder decrypts its slice to $lie: refused by name, another hospital decrypts that slice (before: $before)', async ({ f, refusal }) => {
    // H1 is the key holder (the first contributor) and decrypts the first slice; its own update is honest, only its decryption lies.
    current = await cohort(n, {}, { secure: true, hostile: 'first' });
    current.hostile.behaviour = secureBehaviour(current.hostile, { reply: lieAtDecrypt(f) });
    await secureRun(current, n, 'he', 1);
    // Its honest update is in the sum: it moves the mean by at most its weight share × 2R (+ the HE quantisation error).
    const total = current.all.reduce((s, h) => s + HONEST_SAMPLES(h.hospitalId), 0);
    expectNearHonest(current, (HONEST_SAMPLES('H1') / total) * 2 * CLIP + 1e-3, [1]);
    const named = await auditNaming(current, 'H1');
    expect(named, JSON.stringify(named)).toHaveLength(1);
    expect(JSON.stringify(named[0])).toMatch(refusal);
    // The decryption was shared: every hospital decrypted a slice, H1's twice-assigned slice by someone else.
    const decrypted = current.all.map((h) => h.received('he-decrypt', 1).length);
    expect(decrypted.every((k) => k >= 1), `he-decrypt instructions per hospital: ${decrypted.join(', ')}`).toBe(true);
  });
});
