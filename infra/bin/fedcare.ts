/**
 * The CDK app's entry point (cdk.json "app"): the parameters from context (src/config.ts lists
 * them), the stacks, and the synth — whose validation runs cdk-nag and fails on an open finding.
 */
import { App } from 'aws-cdk-lib';
import { addFedcareStacks } from '../src/app';
import { CONTEXT_KEYS, ConfigError, resolveConfig, type FedcareContext } from '../src/config';

const app = new App();
const context: FedcareContext = Object.fromEntries(CONTEXT_KEYS.map((k) => [k, app.node.tryGetContext(k) as string | undefined]));
try {
  addFedcareStacks(app, resolveConfig(context));
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`fedcare infra: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
app.synth();
