/**
 * Test helper: FHIR patient Bundles (and support bundles) → a FHIR Bulk Data export in memory, the
 * way a FHIR server would export the same data: one NDJSON file per resource type (the big types
 * split into several files), every resource with an id (a Synthea transaction bundle often has only
 * a `urn:uuid:` fullUrl: the uuid becomes the id), lines shuffled across patients, files in a
 * shuffled order with Patient last, and the patient named half the time as `Patient/<id>`
 * (the Bulk Data form) and half the time as the bundle's `urn:uuid:<id>`. No host imports.
 */
import { Rng } from '../util/random';

export interface BulkTestFile {
  readonly name: string;
  readonly lines: string[];
}

type Json = Record<string, unknown>;

function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function entriesOf(bundle: unknown): { fullUrl?: string; resource: Json }[] {
  const b = (typeof bundle === 'string' ? JSON.parse(bundle) : bundle) as { entry?: { fullUrl?: string; resource: Json }[] };
  return b.entry ?? [];
}

/** `lines` per resource type, in entry order, each resource once (by type and id). */
function linesByType(bundles: readonly unknown[], support: readonly unknown[], rng: Rng): Map<string, string[]> {
  const byType = new Map<string, string[]>();
  const seen = new Set<string>();
  const add = (entries: { fullUrl?: string; resource: Json }[], patientUuid: string | undefined) => {
    for (const e of entries) {
      const r = e.resource;
      const type = r.resourceType as string;
      const id = (r.id as string | undefined) ?? e.fullUrl?.replace(/^urn:uuid:/, '');
      if (seen.has(`${type}/${id}`)) continue;
      seen.add(`${type}/${id}`);
      let line = JSON.stringify({ ...r, id });
      if (patientUuid && rng.bernoulli(0.5)) line = line.replaceAll(`"urn:uuid:${patientUuid}"`, `"Patient/${patientUuid}"`);
      byType.set(type, [...(byType.get(type) ?? []), line]);
    }
  };
  for (const s of support) add(entriesOf(s), undefined);
  for (const b of bundles) {
    const entries = entriesOf(b);
    const patient = entries.find((e) => e.resource.resourceType === 'Patient');
    add(entries, (patient?.resource.id as string | undefined) ?? patient?.fullUrl?.replace(/^urn:uuid:/, ''));
  }
  return byType;
}

/**
 * The Bulk Data files of `bundles` (+ `support`): Type.ndjson, or Type.000.ndjson … when a type
 * has more than `maxLinesPerFile` resources. Deterministic for a seed.
 */
export function bundlesToBulk(bundles: readonly unknown[], options: { seed: string; support?: readonly unknown[]; maxLinesPerFile?: number }): BulkTestFile[] {
  const rng = new Rng(options.seed);
  const max = options.maxLinesPerFile ?? 400;
  const files: BulkTestFile[] = [];
  for (const [type, lines] of linesByType(bundles, options.support ?? [], rng)) {
    shuffle(lines, rng);
    if (lines.length <= max) {
      files.push({ name: `${type}.ndjson`, lines });
      continue;
    }
    for (let k = 0; k * max < lines.length; k++) {
      files.push({ name: `${type}.${String(k).padStart(3, '0')}.ndjson`, lines: lines.slice(k * max, (k + 1) * max) });
    }
  }
  const patients = files.filter((f) => f.name.startsWith('Patient.'));
  return [...shuffle(files.filter((f) => !f.name.startsWith('Patient.')), rng), ...patients];
}
