/**
 * Child process for the kill -9 test: opens the store, resumes (or creates) the running run and
 * commits rounds in a loop until it is killed. Prints "begin N" before and "committed N" after each
 * commit. With a third argument K it SIGKILLs itself inside round K's commit transaction, after
 * every row is written and before COMMIT.
 *
 *   node --import tsx crash-child.ts DB_FILE WEIGHT_COUNT [DIE_IN_ROUND]
 */
import { writeSync } from 'node:fs';
import { openSqliteStore } from '../sqlite';
import { commitFor, sha256Hex } from './rounds';

const [file, countArg, dieArg] = process.argv.slice(2);
if (file === undefined || countArg === undefined) throw new Error('usage: crash-child.ts DB_FILE WEIGHT_COUNT [DIE_IN_ROUND]');
const weightCount = Number(countArg);
const dieIn = dieArg === undefined ? undefined : Number(dieArg);
const say = (line: string): void => void writeSync(1, `${line}\n`);

const store = openSqliteStore(file, {
  testHooks: {
    inCommitTransaction: (round) => {
      if (round === dieIn) {
        say(`dying ${round}`);
        process.kill(process.pid, 'SIGKILL');
      }
    },
  },
});
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
