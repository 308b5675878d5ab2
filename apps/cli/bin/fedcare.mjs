#!/usr/bin/env node
// The `fedcare` command. Registers tsx so the TypeScript sources run as they are, from any directory.
import { register } from 'tsx/esm/api';

register();
try {
  const { main } = await import('../src/main.ts');
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  // An unexpected failure: one clear stack trace (never the minified source line of a dependency).
  process.stderr.write(`fedcare: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 70;
}
