/** `fedcare identity`: the hospital's SecAgg+/HE signing identity, to publish to the other operators out of band. */
import { parseArgs } from 'node:util';
import { hospitalIdSchema } from '@fedcare/shared/data';
import { exportIdentityPublicKey, identityFingerprint, identityFromCredential, keyHex } from '@fedcare/shared/secagg';
import { CliError } from '../io';

const HELP = `usage: fedcare identity --hospital H1 [--token TOKEN | env FEDCARE_TOKEN] [--json]

Prints the hospital's identity public key (Ed25519, derived from its token: the same in the portal,
the headless client and after restarts) and its fingerprint. Give the key to the other hospitals'
operators by a channel the coordinator does not control; each puts every hospital's line into a
roster file {"H1": "<key>", "H2": "<key>", …} and runs \`fedcare client --roster FILE\` (or loads
it in the portal), so no identity key relayed by the coordinator is ever trusted on first use.
Read the fingerprint aloud to check a key that came by e-mail. Nothing secret is printed.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      hospital: { type: 'string' },
      token: { type: 'string', default: process.env.FEDCARE_TOKEN },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.hospital) throw new CliError('--hospital is required', 2);
  if (!hospitalIdSchema.safeParse(values.hospital).success) throw new CliError(`--hospital: "${values.hospital}" is not a valid hospital id`, 2);
  if (!values.token) throw new CliError('a token is required: --token TOKEN or FEDCARE_TOKEN in the environment (preferred: argv is visible to other users)', 2);
  let key: Uint8Array;
  try {
    key = await exportIdentityPublicKey((await identityFromCredential(values.token)).publicKey);
  } catch (e) {
    throw new CliError(`no identity from this token: ${(e as Error).message}`, 2);
  }
  const fingerprint = await identityFingerprint(key);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ hospital: values.hospital, algorithm: 'Ed25519', public_key: keyHex(key), fingerprint })}\n`);
  } else {
    process.stdout.write(`${values.hospital} identity key (Ed25519): ${keyHex(key)}\nfingerprint: ${fingerprint}\nroster entry: ${JSON.stringify({ [values.hospital]: keyHex(key) }).slice(1, -1)}\n`);
  }
  return 0;
}
