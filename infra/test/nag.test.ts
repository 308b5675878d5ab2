// cdk-nag's AwsSolutions and HIPAA.Security packs on the app as `npm run synth` builds it (the
// defaults, CDK's CloudFormation validation on): the synth passes with no open finding, every
// acknowledgement sits on the construct it concerns with a reason and answers a real finding, and
// one finding left open fails the synth.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks, HIPAASecurityChecks, type NagPack } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { acknowledgements, synthesize, type Synthesized } from './synth';

interface ReportJson {
  pluginReports: { pluginName: string; conclusion: string; violations: unknown[] }[];
}

/** What a pack finds with every acknowledgement ignored: [rule id, construct path] pairs. */
function rawFindings(pack: NagPack, root: IConstruct): { id: string; path: string }[] {
  (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return pack.validateScope(root).violations.flatMap((v) => v.violatingResources.map((r) => ({ id: v.ruleName, path: r.constructPath ?? '' })));
}

let s: Synthesized;
beforeAll(() => {
  s = synthesize({}, { nag: true, cfnValidation: true });
});

describe('cdk-nag on every synth', () => {
  it('synthesizes the four templates with no open finding in the validation report', () => {
    for (const stack of ['FedcareData', 'FedcareNetwork', 'FedcareService', 'FedcareMonitoring']) expect(existsSync(path.join(s.outdir, `${stack}.template.json`)), stack).toBe(true);
    const report = JSON.parse(readFileSync(path.join(s.outdir, 'validation-report.json'), 'utf8')) as ReportJson;
    // A plugin appears only with findings (open or acknowledged); none may be open or failing.
    for (const p of report.pluginReports) {
      expect(p.conclusion, p.pluginName).toBe('success');
      expect(p.violations, p.pluginName).toEqual([]);
    }
  });

  it('acknowledges each finding of both packs on the construct it concerns (never a stack), with a reason, and nothing that is not a finding', () => {
    const acks = acknowledgements(s.app).filter((a) => /^(AwsSolutions|HIPAA\.Security)-/.test(a.id));
    const findings = [...rawFindings(new AwsSolutionsChecks(), s.app), ...rawFindings(new HIPAASecurityChecks(), s.app)];
    // Both packs ran over this tree and found what the acknowledgements answer.
    expect(findings.some((f) => f.id.startsWith('AwsSolutions-'))).toBe(true);
    expect(findings.some((f) => f.id.startsWith('HIPAA.Security-'))).toBe(true);
    const covers = (a: (typeof acks)[number], f: (typeof findings)[number]) => a.id === f.id && (f.path === a.path || f.path.startsWith(`${a.path}/`));
    expect(findings.filter((f) => !acks.some((a) => covers(a, f)))).toEqual([]);
    expect(acks.filter((a) => !findings.some((f) => covers(a, f))).map((a) => `${a.path} ${a.id}`)).toEqual([]);
    for (const a of acks) {
      expect(Stack.isStack(a.construct) || a.construct instanceof App, `${a.id} on ${a.path}`).toBe(false);
      expect(a.reason.length, `${a.id} on ${a.path}`).toBeGreaterThan(60);
    }
  });

  it('fails the synth on an open finding, naming it in the report for both packs', () => {
    let error: unknown;
    let outdir = '';
    try {
      synthesize({}, {
        nag: true,
        extend: (stacks) => {
          outdir = (stacks.data.node.root as App).outdir;
          new Bucket(stacks.data, 'Unencrypted');
        },
      });
    } catch (e) {
      error = e;
    }
    expect(String(error)).toMatch(/ValidationFailed/);
    const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as ReportJson;
    const failing = report.pluginReports.filter((p) => p.conclusion === 'failure');
    expect(failing.map((p) => p.pluginName).sort()).toEqual(['AwsSolutions', 'HIPAA.Security']);
    const paths = JSON.stringify(failing.flatMap((p) => p.violations));
    expect(paths).toContain('FedcareData/Unencrypted');
    expect(paths).toContain('AwsSolutions-S1');
    expect(paths).toContain('HIPAA.Security-S3BucketLoggingEnabled');
    // Nothing but the new bucket is open.
    expect(paths.match(/"constructPath":"[^"]+"/g)!.every((p) => p.includes('FedcareData/Unencrypted'))).toBe(true);
  });
});
