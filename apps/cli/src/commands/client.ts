/** `fedcare client`: a headless hospital (Node host of the shared client pipeline). */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { serverUrlRefusal } from '../server-url';
import { CliError } from '../io';
import { parseFault } from '../faults';
import { startHospital } from '../hospital';
import { loadRecords } from '../records-io';
import { initTf } from '../tf-node';
import { ProgressBar } from '../progress';
import { defaultLedgerPath, defaultPinPath, fileLedgerStore, filePinStore, readRoster } from '../privacy-ledger-file';
import { defaultIdentityPath, loadOrCreateIdentityFile } from '../identity-file';
import { identityFingerprint, exportIdentityPublicKey } from '@fedcare/shared/secagg';
import { parseCsv, type TabularTable } from '@fedcare/shared/tabular';

const HELP = `usage: fedcare client --server URL --hospital H1 [--token TOKEN | env FEDCARE_TOKEN] --data H1.ndjson|H1.csv [--once]
         [--ca FILE] [--insecure] [--privacy-ledger FILE] [--max-epsilon E] [--identity FILE] [--pins FILE | --roster FILE]
         [--fault H1:disconnect@train:round=2]

Connects to the coordinator and trains on the hospital's own records whenever a run asks; only
model updates and metrics leave this process. A --data FILE.csv (a header row, any columns) takes
part in tabular runs (run config task: tabular; tabular.target names the column to predict).
--once exits when the current run ends. With a differentially private run, the ε this hospital
has spent is kept in --privacy-ledger (default: H1.privacy.json beside the data) and training
past the run's target ε is declined. --max-epsilon is this hospital's own cap: it then trains only
in DP runs, and never past E, whatever a run asks.
With secure aggregation, this hospital signs with its own identity key, generated here on first use
and kept in --identity (default: H1.identity.pem beside the data, mode 0600; never derived from the
token, so the coordinator cannot sign as this hospital); \`fedcare identity\` prints its fingerprint.
With secure aggregation, the other hospitals' identity keys are pinned on first sight in --pins
(default: H1.pins.json beside the data); a later substitute is refused. --roster FILE instead
trusts no key on first use: a JSON object {"H1": "<hex key>", …} of the federation's identity keys,
exchanged between operators out of band (each prints its own with \`fedcare identity\`); a hospital
not in it, or with another key, is refused from the first round on. --ca FILE (or FEDCARE_CA) trusts a
private certificate authority (PEM) for an https:// coordinator, besides the system's. Plain http://
is refused to any host but this machine (localhost, 127.0.0.1, ::1) unless --insecure is given.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      server: { type: 'string' },
      ca: { type: 'string', default: process.env.FEDCARE_CA },
      insecure: { type: 'boolean', default: false },
      hospital: { type: 'string' },
      token: { type: 'string', default: process.env.FEDCARE_TOKEN },
      data: { type: 'string' },
      once: { type: 'boolean', default: false },
      fault: { type: 'string', multiple: true, default: [] },
      'model-seed': { type: 'string', default: '0' },
      'privacy-ledger': { type: 'string' },
      'max-epsilon': { type: 'string' },
      pins: { type: 'string' },
      roster: { type: 'string' },
      identity: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  for (const k of ['server', 'hospital', 'data'] as const) if (!values[k]) throw new CliError(`--${k} is required`, 2);
  const refusal = serverUrlRefusal(values.server as string, values.insecure);
  if (refusal) throw new CliError(refusal, 2);
  if (!values.token) throw new CliError('a token is required: --token TOKEN or FEDCARE_TOKEN in the environment (preferred: argv is visible to other users)', 2);
  const hospitalId = values.hospital as string;
  // A .csv is a table for tabular runs (any columns, the run names the target); anything else, patient records.
  const table = /\.csv$/i.test(values.data as string) ? readTable(values.data as string) : undefined;
  const records = table ? [] : loadRecords(values.data as string).filter((r) => r.hospital_id === hospitalId);
  if (!table && records.length === 0) throw new CliError(`${values.data} holds no records of ${hospitalId}`);
  const faults = values.fault.map(parseFault).filter((f) => f.hospital === hospitalId);
  const maxEpsilon = values['max-epsilon'] === undefined ? undefined : Number(values['max-epsilon']);
  if (maxEpsilon !== undefined && !(maxEpsilon > 0)) throw new CliError(`--max-epsilon must be a number > 0, got "${values['max-epsilon']}"`, 2);
  if (values.pins && values.roster) throw new CliError('--pins and --roster exclude each other: a roster replaces trust on first use', 2);
  const roster = values.roster === undefined ? undefined : readRoster(values.roster);
  const ca = values.ca === undefined ? undefined : readCa(values.ca);
  const log = (msg: string) => !values.quiet && process.stderr.write(`${msg}\n`);
  const identityFile = values.identity ?? defaultIdentityPath(values.data as string, hospitalId);
  const { identity, created } = await loadOrCreateIdentityFile(identityFile).catch((e: unknown) => {
    throw new CliError((e as Error).message);
  });
  if (created) log(`${hospitalId}: created identity key ${identityFile} (fingerprint ${await identityFingerprint(await exportIdentityPublicKey(identity.publicKey))}); publish it with \`fedcare identity\``);
  await initTf('wasm');
  let bar: ProgressBar | undefined;
  const hospital = startHospital({
    server: values.server as string,
    ...(ca ? { ca } : {}),
    hospitalId,
    token: values.token as string,
    records,
    ...(table ? { table } : {}),
    identity,
    modelSeed: Number(values['model-seed']),
    privacyLedger: fileLedgerStore(values['privacy-ledger'] ?? defaultLedgerPath(values.data as string, hospitalId)),
    ...(roster ? { roster } : { pinStore: filePinStore(values.pins ?? defaultPinPath(values.data as string, hospitalId)) }),
    ...(maxEpsilon !== undefined ? { maxEpsilon } : {}),
    exitOnRunEnd: values.once,
    log,
    onProgress: (p) => {
      if (values.quiet || p.stage !== 'train' || !p.train) return;
      if (p.train.epoch === 1 && p.train.batch === 1) bar = new ProgressBar(`${hospitalId} round ${p.round}`, p.train.epochs * p.train.batches);
      bar?.update((p.train.epoch - 1) * p.train.batches + p.train.batch, `loss ${p.train.loss.toFixed(3)}`);
    },
    beforeInstruction: (instr, socket) => {
      const f = faults.find((x) => x.stage === instr.stage && x.round === instr.round);
      if (!f) return true;
      faults.splice(faults.indexOf(f), 1);
      log(`${hospitalId}: fault injected: disconnecting at ${f.stage} of round ${f.round}`);
      socket.disconnect();
      setTimeout(() => socket.connect(), 1500);
      return false;
    },
  });
  process.once('SIGINT', () => hospital.close());
  process.once('SIGTERM', () => hospital.close());
  try {
    await hospital.done;
  } catch (e) {
    // Refused at sign-in, or closed by the coordinator (token revoked): say why, exit 1, no stack trace.
    throw new CliError((e as Error).message);
  } finally {
    hospital.close();
  }
  return 0;
}

/** A CSV file as a table; a malformed one fails here, naming the line. */
function readTable(file: string): TabularTable {
  try {
    const table = parseCsv(readFileSync(file, 'utf8'), file);
    if (table.rows.length === 0) throw new Error(`${file} has a header and no rows`);
    return table;
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}

/** A PEM CA bundle, read now: a missing file or one without a certificate fails here, in one line. */
function readCa(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (e) {
    throw new CliError(`--ca: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
  }
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new CliError(`--ca: ${file} holds no PEM certificate`, 2);
  return pem;
}
