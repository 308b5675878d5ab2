/**
 * Child process for the kill -9 tests: opens the store, resumes (or creates) the running run and
 * commits rounds in a loop until it is killed. Prints "begin N" before and "committed N" after each
 * commit. With DIE_IN_ROUND K it SIGKILLs itself inside round K's commit ("dying K"): SQLite inside
 * the transaction, after every row is written and before COMMIT; aws after the S3 uploads and before
 * the DynamoDB transaction, or with `after` right after the transaction (before pruning).
 *
 *   node --import tsx crash-child.ts STORE WEIGHT_COUNT [DIE_IN_ROUND [after]]
 *
 * STORE is a SQLite file, or aws:TABLE_PREFIX:BUCKET with the endpoints, region and credentials in
 * the environment (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, …).
 */
import { writeSync } from 'node:fs';
import type { Store } from '@fedcare/shared/fl';
import { openAwsStore } from '../aws';
import { openSqliteStore } from '../sqlite';
import { commitFor, sha256Hex } from './rounds';

const [storeArg, countArg, dieArg, dieWhen] = process.argv.slice(2);
if (storeArg === undefined || countArg === undefined) throw new Error('usage: crash-child.ts STORE WEIGHT_COUNT [DIE_IN_ROUND [after]]');
const weightCount = Number(countArg);
const dieIn = dieArg === undefined ? undefined : Number(dieArg);
const say = (line: string): void => void writeSync(1, `${line}\n`);
const die = (round: number): void => {
  if (round === dieIn) {
    say(`dying ${round}`);
    process.kill(process.pid, 'SIGKILL');
  }
};

let store: Store;
if (storeArg.startsWith('aws:')) {
  const [, tablePrefix = '', bucket = ''] = storeArg.split(':');
  store = await openAwsStore({ tablePrefix, bucket, testHooks: dieWhen === 'after' ? { afterTransaction: die } : { beforeTransaction: die } });
} else {
  store = openSqliteStore(storeArg, { testHooks: { inCommitTransaction: die } });
}
const run = (await store.activeRun()) ?? (await store.createRun('crash', { strategy: 'fedavg' }, 1_000_000));
const resume = await store.resumePoint(run.runId);
if (resume !== undefined && sha256Hex(resume.weights) !== resume.sha256) {
  say(`bad resume ${resume.round}`);
  process.exit(3);
}
let round = resume?.round ?? 0;
say(`resumed ${round}`);
for (;;) {
  round++;
  say(`begin ${round}`);
  await store.commitRound(commitFor({ runId: run.runId, round, weightCount, best: round % 4 !== 0 }));
  say(`committed ${round}`);
}
