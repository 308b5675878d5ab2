#!/usr/bin/env node
// The `fedcare` command. Registers tsx so the TypeScript sources run as they are, from any directory.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
