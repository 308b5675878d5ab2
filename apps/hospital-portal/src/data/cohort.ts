/**
 * A summary of the hospital's cohort for the portal's charts. Pure; computed in the tab from
 * records that never leave it.
 *
 * Choices:
 * - labelled: records whose risk_level is known, the label the risk model trains on (features.ts
 *   encodes an unknown level as -1 and training skips it). FHIR imports never have one.
 * - Age bins of 10 years, "<30" and "90+" at the ends; every bin is listed, empty ones with 0.
 * - Outcome rates (30-day readmission, adverse event) are over the records where that outcome is
 *   known (not null); `known` says how many. With none known the rate is 0 and `known` is 0.
 * - riskLevels: Low, Medium, High always, then Unknown when some records have no risk_level.
 * - Missingness per modality, as the fraction of records without it:
 *     a series (vitals, labs, biology markers) is missing when no channel has a single non-null
 *     value (no timestamps, or only empty readings); gene expression and metabolomics are missing
 *     when null or empty. Demographics are required by the schema except BMI, so that modality is
 *     reported as BMI (missing when null).
 *   With no records every fraction is 0.
 */
import { RISK_LEVELS, type PatientRecord } from '@fedcare/shared/data';

export interface AgeBin {
  readonly bin: string;
  readonly count: number;
}

export interface OutcomeRate {
  readonly key: 'readmission_30d' | 'adverse_event';
  readonly name: string;
  /** Fraction 0..1 of the records where the outcome is known. */
  readonly rate: number;
  /** Records where the outcome is known. */
  readonly known: number;
}

export interface ModalityMissing {
  /** Schema field: `clinical_timeseries`, `omics_data.gene_expression`, `demographics.bmi`, … */
  readonly modality: string;
  /** Display name. */
  readonly label: string;
  /** Fraction 0..1 of the records without this modality. */
  readonly missing: number;
}

export interface CohortSummary {
  readonly count: number;
  readonly labelled: number;
  readonly ageHistogram: AgeBin[];
  readonly sex: { readonly sex: 'M' | 'F'; readonly count: number }[];
  readonly outcomes: OutcomeRate[];
  readonly riskLevels: { readonly level: string; readonly count: number }[];
  readonly missingness: ModalityMissing[];
}

/** Bin labels: "<30", "30–39", …, "80–89", "90+". */
export const AGE_BINS: readonly string[] = ['<30', ...[30, 40, 50, 60, 70, 80].map((a) => `${a}–${a + 9}`), '90+'];

export function ageBinIndex(age: number): number {
  if (age < 30) return 0;
  if (age >= 90) return AGE_BINS.length - 1;
  return Math.floor(age / 10) - 2;
}

type Series = Readonly<Record<string, readonly unknown[]>>;

/** No channel of the series holds a value (timestamps alone are not a reading). */
function seriesEmpty(s: Series): boolean {
  return !Object.entries(s).some(([k, vs]) => k !== 'timestamps' && vs.some((v) => v !== null));
}

function namedEmpty(values: Readonly<Record<string, number>> | null): boolean {
  return values === null || Object.keys(values).length === 0;
}

const MODALITIES: readonly { modality: string; label: string; missing: (r: PatientRecord) => boolean }[] = [
  { modality: 'demographics.bmi', label: 'BMI (demographics)', missing: (r) => r.demographics.bmi === null },
  { modality: 'clinical_timeseries', label: 'Vitals', missing: (r) => seriesEmpty(r.clinical_timeseries) },
  { modality: 'lab_results', label: 'Labs', missing: (r) => seriesEmpty(r.lab_results) },
  { modality: 'biology_markers', label: 'Biology markers', missing: (r) => seriesEmpty(r.biology_markers) },
  { modality: 'omics_data.gene_expression', label: 'Gene expression', missing: (r) => namedEmpty(r.omics_data.gene_expression) },
  { modality: 'omics_data.metabolomics', label: 'Metabolomics', missing: (r) => namedEmpty(r.omics_data.metabolomics) },
];

const OUTCOMES: readonly { key: OutcomeRate['key']; name: string }[] = [
  { key: 'readmission_30d', name: '30-day readmission' },
  { key: 'adverse_event', name: 'Adverse event' },
];

export function summarizeCohort(records: readonly PatientRecord[]): CohortSummary {
  const n = records.length;
  const ages = AGE_BINS.map(() => 0);
  const sex = { M: 0, F: 0 };
  const risk = new Map<string, number>(RISK_LEVELS.map((l) => [l, 0]));
  let unknownRisk = 0;
  const outcome = OUTCOMES.map(() => ({ known: 0, positive: 0 }));
  const missing = MODALITIES.map(() => 0);

  for (const r of records) {
    const a = ageBinIndex(r.demographics.age);
    ages[a] = (ages[a] as number) + 1;
    sex[r.demographics.gender]++;
    const level = r.outcomes.risk_level;
    if (level === null) unknownRisk++;
    else risk.set(level, (risk.get(level) ?? 0) + 1);
    OUTCOMES.forEach(({ key }, k) => {
      const v = r.outcomes[key];
      const acc = outcome[k] as { known: number; positive: number };
      if (v !== null) {
        acc.known++;
        acc.positive += v;
      }
    });
    MODALITIES.forEach((m, k) => {
      if (m.missing(r)) missing[k] = (missing[k] as number) + 1;
    });
  }

  return {
    count: n,
    labelled: n - unknownRisk,
    ageHistogram: AGE_BINS.map((bin, k) => ({ bin, count: ages[k] as number })),
    sex: [
      { sex: 'F', count: sex.F },
      { sex: 'M', count: sex.M },
    ],
    outcomes: OUTCOMES.map(({ key, name }, k) => {
      const { known, positive } = outcome[k] as { known: number; positive: number };
      return { key, name, rate: known > 0 ? positive / known : 0, known };
    }),
    riskLevels: [...[...risk].map(([level, count]) => ({ level, count })), ...(unknownRisk > 0 ? [{ level: 'Unknown', count: unknownRisk }] : [])],
    missingness: MODALITIES.map(({ modality, label }, k) => ({ modality, label, missing: n > 0 ? (missing[k] as number) / n : 0 })),
  };
}
