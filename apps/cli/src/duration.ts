/** `--expires 90d`: a duration as a number and a unit (s, m, h, d, w); combined parts like `1d12h` are summed. */
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a duration such as `30m`, `12h`, `90d`, `2w`, `1d12h`; throws naming the value when it is not one. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (!/^(\d+[smhdw])+$/.test(s)) throw new Error(`"${text}" is not a duration: use a number and a unit, e.g. 30m, 12h, 90d, 2w (s, m, h, d, w)`);
  let ms = 0;
  for (const [, n, unit] of s.matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * (UNIT_MS[unit as string] as number);
  if (ms <= 0) throw new Error(`"${text}" is not a positive duration`);
  if (ms > 10 * 365 * 86_400_000) throw new Error(`"${text}" is longer than 10 years; leave --expires out for a token that lasts until revoked`);
  return ms;
}
