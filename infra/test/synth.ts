/** Test helpers: the app synthesized in-process, its templates, and what its IAM policies say. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { addFedcareStacks, type FedcareStacks } from '../src/app';
import { resolveConfig, type FedcareConfig, type FedcareContext } from '../src/config';

/** A deployment with every parameter set (none of them the default). */
export const TEST_CONTEXT: FedcareContext = {
  region: 'eu-central-1',
  availabilityZones: 'eu-central-1b,eu-central-1c',
  imageUri: '123456789012.dkr.ecr.eu-central-1.amazonaws.com/fedcare:2026.12.1',
  certificateArn: 'arn:aws:acm:eu-central-1:123456789012:certificate/11111111-2222-3333-4444-555555555555',
  allowedOrigins: 'https://portal.hospital-a.example,https://fl.consortium.example',
  alarmEmail: 'fl-ops@consortium.example',
  deployment: 'staging',
};

export type StackName = keyof FedcareStacks;
export interface Synthesized {
  app: App;
  config: FedcareConfig;
  stacks: FedcareStacks;
  templates: Record<StackName, Template>;
  outdir: string;
}

/**
 * Builds and synthesizes the app. `nag` registers the two cdk-nag packs (synth throws on an open
 * finding); `cfnValidation` runs CDK's built-in CloudFormation template validation too (slow).
 */
export function synthesize(context: FedcareContext, options: { nag?: boolean; cfnValidation?: boolean; extend?: (stacks: FedcareStacks) => void } = {}): Synthesized {
  const outdir = mkdtempSync(path.join(tmpdir(), 'fedcare-cdk-'));
  const app = new App({ outdir, builtinCloudFormationValidation: options.cfnValidation ?? false });
  const config = resolveConfig(context);
  const stacks = addFedcareStacks(app, config, { nag: options.nag ?? false });
  options.extend?.(stacks);
  app.synth();
  const templates = {
    data: Template.fromStack(stacks.data),
    network: Template.fromStack(stacks.network),
    service: Template.fromStack(stacks.service),
    monitoring: Template.fromStack(stacks.monitoring),
  };
  return { app, config, stacks, templates, outdir };
}

export type Json = Record<string, unknown>;
export interface Statement {
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: Json;
  Sid?: string;
}

export const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every policy statement of a template: identity policies (inline, managed, role policies) and resource policies. */
export function policyStatements(template: Template): { resource: string; type: string; kind: 'identity' | 'resource'; statement: Statement }[] {
  const out: { resource: string; type: string; kind: 'identity' | 'resource'; statement: Statement }[] = [];
  const resources = template.toJSON().Resources as Record<string, { Type: string; Properties?: Json }>;
  const push = (resource: string, type: string, kind: 'identity' | 'resource', doc: unknown) => {
    for (const statement of list((doc as { Statement?: Statement | Statement[] } | undefined)?.Statement)) out.push({ resource, type, kind, statement });
  };
  for (const [id, r] of Object.entries(resources)) {
    const p = r.Properties ?? {};
    switch (r.Type) {
      case 'AWS::IAM::Policy':
      case 'AWS::IAM::ManagedPolicy':
        push(id, r.Type, 'identity', p.PolicyDocument);
        break;
      case 'AWS::IAM::Role':
      case 'AWS::IAM::User':
      case 'AWS::IAM::Group':
        for (const inline of list(p.Policies as { PolicyDocument: unknown }[] | undefined)) push(id, r.Type, 'identity', inline.PolicyDocument);
        push(id, r.Type, 'resource', p.AssumeRolePolicyDocument);
        break;
      case 'AWS::KMS::Key':
        push(id, r.Type, 'resource', p.KeyPolicy);
        break;
      case 'AWS::S3::BucketPolicy':
      case 'AWS::SNS::TopicPolicy':
      case 'AWS::SecretsManager::ResourcePolicy':
        push(id, r.Type, 'resource', p.PolicyDocument ?? p.ResourcePolicy);
        break;
      default:
        break;
    }
  }
  return out;
}

/** The acknowledgements recorded with Validations.of(construct).acknowledge(), by construct path. */
export function acknowledgements(root: IConstruct): { path: string; construct: IConstruct; id: string; reason: string }[] {
  const out: { path: string; construct: IConstruct; id: string; reason: string }[] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        out.push({ path: c.node.path, construct: c, id: id.replace(/^annotation::/i, ''), reason });
      }
    }
  }
  return out;
}

/** The resolved string form of a template value, tokens kept as {"Ref": …} JSON (for matching against a name). */
export const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
