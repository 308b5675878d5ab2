/** The `fedcare` command: one entry point, one module per subcommand. */
import { CliError } from './io';

interface Command {
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  start: { summary: 'coordinator + headless H1–H3 + a FedAvg run on generated data (the main job)', load: () => import('./commands/start') },
  generate: { summary: 'write seeded synthetic hospitals H1–H3 as NDJSON', load: () => import('./commands/generate') },
  'import-fhir': { summary: 'turn FHIR R4 bundles or a FHIR Bulk Data export (NDJSON per resource type, streamed) into NDJSON records', load: () => import('./commands/import-fhir') },
  train: { summary: 'train the multimodal model centrally (pooled or one hospital)', load: () => import('./commands/train') },
  serve: { summary: 'run the coordinator (Socket.IO + REST) on embedded defaults', load: () => import('./commands/serve') },
  client: { summary: 'run a headless hospital that joins the coordinator', load: () => import('./commands/client') },
  simulate: { summary: 'a whole federation on this machine, one JSON line per round', load: () => import('./commands/simulate') },
  cluster: { summary: 'federated autoencoder + federated k-means on the latent codes; per-cluster table and plot (SecAgg+ optional)', load: () => import('./commands/cluster') },
  compare: { summary: 'simulate several strategies / privacy budgets on the same data; ranked table and overlay plot', load: () => import('./commands/compare') },
  tune: { summary: 'hyper-parameter search (ASHA) over simulated federations; ranked by validation AUC-ROC, resumable', load: () => import('./commands/tune') },
  runs: { summary: 'list the runs in a coordinator database, or one run’s metrics per round (table, JSON, CSV, plot)', load: () => import('./commands/runs') },
  export: { summary: 'a run’s model and its model card out of the database, for use without the coordinator', load: () => import('./commands/export') },
  predict: { summary: 'score records (NDJSON) with an exported model, one CSV row per patient', load: () => import('./commands/predict') },
  report: { summary: 'one self-contained HTML report of a run (model card, metrics, fairness, privacy, dropouts, audit trail)', load: () => import('./commands/report') },
  token: { summary: 'create, list or revoke credentials', load: () => import('./commands/token') },
  identity: { summary: 'print a hospital’s identity key and fingerprint, for an out-of-band roster', load: () => import('./commands/identity') },
  privacy: { summary: 'ε for a DP-SGD schedule (RDP accountant), σ for a target ε, affordable steps', load: () => import('./commands/privacy') },
  audit: { summary: 'audit a DP run: one-run ε lower bound from canaries and a membership-inference attack, beside the accountant’s ε', load: () => import('./commands/audit') },
  bench: { summary: 'benchmarks, one JSON object per line', load: () => import('./commands/bench') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'usage: fedcare <command> [options]   (fedcare <command> --help for its options)',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`fedcare: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  try {
    const mod = await command.load();
    return await mod.run(rest);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`fedcare ${name}: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof Error && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`fedcare ${name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
