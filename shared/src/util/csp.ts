import { z } from 'zod';

/**
 * For pages under a Content-Security-Policy without 'unsafe-eval' (the portal and the dashboard):
 * zod otherwise probes `new Function` before its first object parse to decide whether to compile
 * fast parsers, and a strict policy reports that probe as a violation even though zod catches it.
 * Call once, before anything is parsed.
 */
export function withoutEval(): void {
  z.config({ jitless: true });
}
