/**
 * The hospitals of seed spec 1.2 and how they differ (non-IID on purpose). Every number that makes
 * H1, H2 and H3 different lives here; the generator reads nothing else about a hospital.
 */
import type { Comorbidity } from './vocabulary';

export interface HospitalProfile {
  readonly id: string;
  readonly name: string;
  readonly character: 'urban' | 'suburban' | 'rural';
  readonly description: string;
  /** Spec 1.2 targets. */
  readonly patients: number;
  readonly meanAge: number;
  readonly ageSd: number;
  readonly maleShare: number;
  readonly readmissionRate: number;
  /** Weights over ETHNICITIES (Caucasian, African American, Hispanic, Asian, Other). */
  readonly ethnicityWeights: readonly [number, number, number, number, number];
  readonly meanBmi: number;
  /** Added to every comorbidity's log-odds: rural patients are sicker, suburban healthier. */
  readonly comorbidityLogitOffset: number;
  /** Extra log-odds for particular comorbidities (local prevalence differences). */
  readonly comorbidityExtra: Partial<Record<Comorbidity, number>>;
  /** Days between routine lab draws [min, max]: the rural H3 measures labs less often. */
  readonly labIntervalDays: readonly [number, number];
  /** Probability that a scheduled lab draw / marker draw / daily vitals reading does not happen. */
  readonly labSkip: number;
  readonly markerSkip: number;
  readonly vitalsSkip: number;
  /** Probability that one channel of a reading that did happen is missing. */
  readonly valueMissing: number;
  /** Probability that the patient has no omics profile at all. */
  readonly omicsMissing: number;
  /**
   * How this hospital's outcome relationship differs from the shared one (added to the weights of
   * the latent risk function, see generator.ts): e.g. at the rural H3 age and deterioration matter
   * more, at the urban H1 acute inflammation does.
   */
  readonly riskWeightDelta: Partial<Record<RiskTerm, number>>;
}

export const RISK_TERMS = ['age', 'cardiac', 'renal', 'inflammation', 'metabolic', 'frailty', 'deterioration', 'genomic'] as const;
export type RiskTerm = (typeof RISK_TERMS)[number];

export const HOSPITAL_PROFILES: Readonly<Record<'H1' | 'H2' | 'H3', HospitalProfile>> = {
  H1: {
    id: 'H1',
    name: 'Metropolitan General',
    character: 'urban',
    description: 'Urban, diverse population',
    patients: 1000,
    meanAge: 62,
    ageSd: 13,
    maleShare: 0.55,
    readmissionRate: 0.18,
    ethnicityWeights: [0.42, 0.26, 0.19, 0.11, 0.02],
    meanBmi: 27.8,
    comorbidityLogitOffset: 0,
    comorbidityExtra: { asthma: 0.3, depression: 0.2 },
    labIntervalDays: [7, 7],
    labSkip: 0.08,
    markerSkip: 0.1,
    vitalsSkip: 0.08,
    valueMissing: 0.03,
    omicsMissing: 0.1,
    riskWeightDelta: { inflammation: 0.2 },
  },
  H2: {
    id: 'H2',
    name: 'Lakeside Suburban',
    character: 'suburban',
    description: 'Suburban, younger cohort',
    patients: 800,
    meanAge: 58,
    ageSd: 12,
    maleShare: 0.48,
    readmissionRate: 0.15,
    ethnicityWeights: [0.64, 0.12, 0.13, 0.09, 0.02],
    meanBmi: 27.2,
    comorbidityLogitOffset: -0.3,
    comorbidityExtra: { obesity: 0.2, diabetes_type2: 0.15 },
    labIntervalDays: [7, 7],
    labSkip: 0.06,
    markerSkip: 0.08,
    vitalsSkip: 0.05,
    valueMissing: 0.02,
    omicsMissing: 0.05,
    riskWeightDelta: { metabolic: 0.25, genomic: 0.15 },
  },
  H3: {
    id: 'H3',
    name: 'Valley County Rural',
    character: 'rural',
    description: 'Rural, older, sicker patients',
    patients: 1200,
    meanAge: 68,
    ageSd: 11,
    maleShare: 0.6,
    readmissionRate: 0.22,
    ethnicityWeights: [0.83, 0.07, 0.07, 0.01, 0.02],
    meanBmi: 29.0,
    comorbidityLogitOffset: 0.4,
    comorbidityExtra: { copd: 0.5, heart_failure: 0.3 },
    labIntervalDays: [14, 21],
    labSkip: 0.2,
    markerSkip: 0.3,
    vitalsSkip: 0.18,
    valueMissing: 0.06,
    omicsMissing: 0.3,
    riskWeightDelta: { age: 0.15, deterioration: 0.2 },
  },
};

export const KNOWN_HOSPITALS = Object.keys(HOSPITAL_PROFILES) as ('H1' | 'H2' | 'H3')[];

export function hospitalProfile(id: string): HospitalProfile {
  const p = (HOSPITAL_PROFILES as Record<string, HospitalProfile | undefined>)[id];
  if (!p) throw new Error(`unknown hospital "${id}" (known: ${KNOWN_HOSPITALS.join(', ')})`);
  return p;
}
