/**
 * Seeded, deterministic synthetic hospitals (seed spec 1.1 records, spec 1.2 hospitals).
 *
 * Every patient is drawn from its own PRNG stream `seed/hospital/index`, so the same seed gives
 * byte-identical files and a hospital's records do not depend on which other hospitals are generated.
 *
 * ## The generative story
 * 1. Demographics: age ~ N(meanAge, ageSd) truncated to 18–97; exactly round(maleShare·n) men
 *    (a seeded permutation decides who); ethnicity and BMI by hospital.
 * 2. Comorbidities: logistic in age (per decade from 60), BMI and other comorbidities, plus the
 *    hospital's offsets (profiles.ts). An admission diagnosis is drawn given them.
 * 3. Six latent physiological states (unobserved, roughly standard scale):
 *      cardiac   c = 1.1·HF + 0.5·CAD + 0.4·AF + 0.8·[AMI or HF exacerbation] + N(0, 0.5)
 *      renal     r = 1.3·CKD + 0.3·T2D + 0.2·HTN + 0.2·(age−60)/10 + 0.9·[AKI] + N(0, 0.5)
 *      inflam.   i = 0.5·COPD + 1.2·[infection admission] + N(0, 0.8)
 *      metabolic m = 1.2·T2D + 0.3·(BMI−27)/5 + N(0, 0.5)
 *      frailty   f = 0.4·(age−60)/10 + 0.25·#comorbidities + N(0, 0.7)
 *      deterioration d ~ N(0, 0.8) + 0.3·i   — how the patient trends over the last three weeks
 *      genomic   g ~ N(0, 1)                 — visible only through a six-gene omics signature
 * 4. Observations are noisy functions of the states (vitals daily over the 84-day window ending at
 *    discharge, with d as a late ramp in heart rate, SpO2, temperature and creatinine; labs every
 *    labIntervalDays; markers monthly; omics once as a low-rank loading of the states plus noise).
 *    Correlations: creatinine and potassium with CKD (r), BNP and troponin with heart failure (c),
 *    glucose with diabetes (m), CRP, WBC and IL6/TNF with inflammation (i).
 * 5. The latent risk function (weights w plus the hospital's riskWeightDelta):
 *      R = −1.5 + 0.35·(age−60)/10 + 0.55·c + 0.5·r + 0.45·i + 0.35·m + 0.35·f + 0.7·d + 0.45·g
 *    risk_level: R + N(0, 0.8) cut at fixed thresholds RISK_CUTS (same for every hospital):
 *      Low below −0.7, High above 0.9, Medium between.
 *    readmission_30d: within each hospital, exactly round(readmissionRate·n) patients with the
 *      highest R + Logistic(0, 0.9) (a hospital's readmission rate is a property of its care
 *      pathway; the ordering is the shared biology). days_to_readmission = 1 + ⌊29·u^(1+Δ)⌋, with
 *      u uniform and Δ the patient's margin above the hospital's cut: sicker → sooner.
 *    adverse_event ~ Bernoulli(σ(−3.4 + 1.1·R)).
 * The noise terms bound what any model can do: `GeneratedHospital.latentRisk` holds R itself, and
 * using it as the score gives the best achievable 3-class macro AUC (0.908 on seed 42; README).
 */
import { Rng } from '../util/random';
import { type PatientRecord } from './schema';
import { hospitalProfile, type HospitalProfile, type RiskTerm } from './profiles';
import {
  COMORBIDITY_ICD10,
  ETHNICITIES,
  GENES,
  METABOLITES,
  RISK_LEVELS,
  type Comorbidity,
  type RiskLevel,
} from './vocabulary';

export const OBSERVATION_WINDOW_DAYS = 84;
export const RISK_CUTS = { lowBelow: -0.7, highAbove: 0.9 } as const;
export const RISK_LABEL_NOISE_SD = 0.8;
/** Centres R so that a typical patient sits near 0. */
export const RISK_INTERCEPT = -1.5;

const BASE_RISK_WEIGHTS: Record<RiskTerm, number> = {
  age: 0.35,
  cardiac: 0.55,
  renal: 0.5,
  inflammation: 0.45,
  metabolic: 0.35,
  frailty: 0.35,
  deterioration: 0.7,
  genomic: 0.45,
};

export function riskWeights(profile: HospitalProfile): Record<RiskTerm, number> {
  const w = { ...BASE_RISK_WEIGHTS };
  for (const [k, v] of Object.entries(profile.riskWeightDelta)) w[k as RiskTerm] += v as number;
  return w;
}

interface Latent {
  cardiac: number;
  renal: number;
  inflammation: number;
  metabolic: number;
  frailty: number;
  deterioration: number;
  genomic: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round = (x: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

function isoDay(epochDay: number): string {
  return new Date(epochDay * 86_400_000).toISOString().slice(0, 10);
}
const EPOCH_2025 = Date.UTC(2025, 0, 1) / 86_400_000;

/** Comorbidity log-odds at age 60, their slope per decade, and what else raises them. */
const COMORBIDITY_MODEL: Record<Comorbidity, { base: number; perDecade: number }> = {
  hypertension: { base: -0.2, perDecade: 0.45 },
  diabetes_type2: { base: -1.5, perDecade: 0.25 },
  chronic_kidney_disease: { base: -2.4, perDecade: 0.4 },
  heart_failure: { base: -2.6, perDecade: 0.55 },
  copd: { base: -2.3, perDecade: 0.35 },
  coronary_artery_disease: { base: -1.9, perDecade: 0.45 },
  atrial_fibrillation: { base: -2.5, perDecade: 0.6 },
  obesity: { base: -9, perDecade: 0 }, // decided by BMI ≥ 30 below
  asthma: { base: -2.6, perDecade: -0.1 },
  depression: { base: -2.0, perDecade: -0.05 },
  hyperlipidemia: { base: -0.9, perDecade: 0.25 },
  anemia: { base: -2.4, perDecade: 0.3 },
};

const ORDER: Comorbidity[] = [
  'obesity',
  'hypertension',
  'hyperlipidemia',
  'diabetes_type2',
  'coronary_artery_disease',
  'atrial_fibrillation',
  'chronic_kidney_disease',
  'heart_failure',
  'copd',
  'asthma',
  'depression',
  'anemia',
];

function drawComorbidities(rng: Rng, age: number, bmi: number, p: HospitalProfile): Set<Comorbidity> {
  const has = new Set<Comorbidity>();
  const dec = (age - 60) / 10;
  for (const k of ORDER) {
    if (k === 'obesity') {
      if (bmi >= 30) has.add(k);
      continue;
    }
    const m = COMORBIDITY_MODEL[k];
    let logit = m.base + m.perDecade * dec + p.comorbidityLogitOffset + (p.comorbidityExtra[k] ?? 0);
    if (k === 'hypertension' || k === 'diabetes_type2') logit += 0.08 * (bmi - 27);
    if (k === 'chronic_kidney_disease') logit += (has.has('diabetes_type2') ? 0.8 : 0) + (has.has('hypertension') ? 0.5 : 0);
    if (k === 'heart_failure') {
      logit += (has.has('coronary_artery_disease') ? 0.9 : 0) + (has.has('atrial_fibrillation') ? 0.8 : 0) + (has.has('hypertension') ? 0.4 : 0);
    }
    if (k === 'coronary_artery_disease') logit += (has.has('hyperlipidemia') ? 0.6 : 0) + (has.has('diabetes_type2') ? 0.4 : 0);
    if (k === 'anemia') logit += has.has('chronic_kidney_disease') ? 0.9 : 0;
    if (rng.bernoulli(sigmoid(logit))) has.add(k);
  }
  return has;
}

/** Admission diagnoses: ICD-10 code, ICD-10-PCS procedures, and which latent state it moves. */
const ADMISSIONS = [
  { code: 'J18.9', procedures: ['BW03ZZZ'], infection: true, weight: (h: Set<Comorbidity>) => 1 + (h.has('copd') ? 1 : 0) },
  { code: 'A41.9', procedures: ['5A1955Z'], infection: true, weight: () => 0.6 },
  { code: 'N39.0', procedures: [], infection: true, weight: () => 0.7 },
  { code: 'L03.90', procedures: [], infection: true, weight: () => 0.4 },
  { code: 'I50.23', procedures: ['4A023N6'], cardiac: true, weight: (h: Set<Comorbidity>) => (h.has('heart_failure') ? 2.5 : 0.1) },
  { code: 'I21.4', procedures: ['027034Z'], cardiac: true, weight: (h: Set<Comorbidity>) => (h.has('coronary_artery_disease') ? 1.5 : 0.3) },
  { code: 'I63.9', procedures: ['B020ZZZ'], weight: (h: Set<Comorbidity>) => 0.4 + (h.has('atrial_fibrillation') ? 0.8 : 0) },
  { code: 'J44.1', procedures: [], infection: true, weight: (h: Set<Comorbidity>) => (h.has('copd') ? 2 : 0) },
  { code: 'N17.9', procedures: ['5A1D70Z'], renal: true, weight: (h: Set<Comorbidity>) => 0.3 + (h.has('chronic_kidney_disease') ? 1.2 : 0) },
  { code: 'K92.2', procedures: ['0DJ08ZZ'], weight: () => 0.5 },
  { code: 'S72.001A', procedures: ['0QS604Z'], weight: () => 0.5 },
  { code: 'E11.65', procedures: [], weight: (h: Set<Comorbidity>) => (h.has('diabetes_type2') ? 0.8 : 0) },
] as const;

const MEDICATIONS: Partial<Record<Comorbidity, readonly string[]>> = {
  hypertension: ['lisinopril', 'amlodipine'],
  diabetes_type2: ['metformin', 'insulin glargine'],
  heart_failure: ['furosemide', 'metoprolol'],
  coronary_artery_disease: ['aspirin', 'atorvastatin'],
  atrial_fibrillation: ['apixaban'],
  copd: ['tiotropium'],
  asthma: ['albuterol'],
  depression: ['sertraline'],
  hyperlipidemia: ['atorvastatin'],
  anemia: ['ferrous sulfate'],
  chronic_kidney_disease: [],
  obesity: [],
};

/**
 * Omics loadings: which latent state each gene / metabolite reflects. Named panels carry the
 * biology; every other feature gets a small seeded random loading so PCA has structure to find.
 */
const GENE_PANELS: Record<string, Partial<Latent>> = {
  IL6: { inflammation: 1.0 }, TNF: { inflammation: 0.9 }, IL1B: { inflammation: 0.8 }, CXCL8: { inflammation: 0.7 },
  CRP: { inflammation: 0.9 }, NFKB1: { inflammation: 0.5 }, TLR4: { inflammation: 0.4 }, SOCS3: { inflammation: 0.5 },
  NPPA: { cardiac: 1.0 }, NPPB: { cardiac: 1.1 }, MYH7: { cardiac: 0.7 }, TNNT2: { cardiac: 0.8 },
  HAVCR1: { renal: 1.0 }, LCN2: { renal: 0.9, inflammation: 0.3 }, UMOD: { renal: -0.8 },
  INS: { metabolic: -0.6 }, PPARG: { metabolic: 0.8 }, GCK: { metabolic: 0.6 }, TCF7L2: { metabolic: 0.7 },
  CDKN2A: { frailty: 1.0 }, SIRT1: { frailty: -0.7 }, FOXO3: { frailty: -0.6 }, MTOR: { frailty: 0.5 },
  APOE: { genomic: 1.0 }, PCSK9: { genomic: 0.9 }, HIF1A: { genomic: 0.8 }, VEGFA: { genomic: 0.8 },
  MMP9: { genomic: 0.9, inflammation: 0.3 }, TIMP1: { genomic: 0.7 },
};
const METABOLITE_PANELS: Record<string, Partial<Latent>> = {
  lactate: { inflammation: 0.6, cardiac: 0.3 }, pyruvate: { metabolic: 0.4 }, glucose_6_phosphate: { metabolic: 0.8 },
  beta_hydroxybutyrate: { metabolic: 0.6 }, creatinine_m: { renal: 1.0 }, urea: { renal: 0.9 },
  indoxyl_sulfate: { renal: 0.8 }, p_cresyl_sulfate: { renal: 0.7 }, kynurenine: { inflammation: 0.7, frailty: 0.3 },
  trimethylamine_n_oxide: { cardiac: 0.6, renal: 0.4 }, acetylcarnitine: { frailty: 0.6 }, succinate: { genomic: 0.5 },
  sphingosine_1_phosphate: { genomic: -0.5 }, leucine: { metabolic: 0.4 }, valine: { metabolic: 0.4 },
};
const LATENT_KEYS: (keyof Latent)[] = ['cardiac', 'renal', 'inflammation', 'metabolic', 'frailty', 'deterioration', 'genomic'];
/** The names of `GeneratedHospital.latentStates`' columns, in order. */
export const LATENT_STATE_NAMES: readonly string[] = Object.freeze([...LATENT_KEYS]);

interface OmicsModel {
  geneBase: number[];
  geneLoad: number[][];
  metBase: number[];
  metLoad: number[][];
}

let omicsModel: OmicsModel | undefined;
function getOmicsModel(): OmicsModel {
  if (omicsModel) return omicsModel;
  const rng = new Rng('fedcare/omics-loadings/v1');
  const load = (panel: Partial<Latent> | undefined) =>
    LATENT_KEYS.map((k) => (k === 'deterioration' ? 0 : (panel?.[k] ?? 0) + rng.normal(0, 0.08)));
  omicsModel = {
    geneBase: GENES.map(() => rng.uniform(6, 13)),
    geneLoad: GENES.map((g) => load(GENE_PANELS[g])),
    metBase: METABOLITES.map(() => rng.uniform(-1, 1.5)),
    metLoad: METABOLITES.map((m) => load(METABOLITE_PANELS[m])),
  };
  return omicsModel;
}

interface Draft {
  record: PatientRecord;
  risk: number;
  propensity: number;
  /** Uniform draw for days_to_readmission. */
  u: number;
  /** The latent states, in LATENT_STATE_NAMES order. */
  z: number[];
}

function drawPatient(p: HospitalProfile, seed: number, index: number, male: boolean): Draft {
  const rng = Rng.derive('fedcare/patient/v1', seed, p.id, index);
  let age = rng.normal(p.meanAge, p.ageSd);
  while (age < 18 || age > 97) age = rng.normal(p.meanAge, p.ageSd);
  age = Math.round(age);
  const ethnicity = ETHNICITIES[rng.categorical(p.ethnicityWeights)] as (typeof ETHNICITIES)[number];
  const bmi = round(clamp(rng.normal(p.meanBmi, 5), 16, 55), 1);
  const has = drawComorbidities(rng, age, bmi, p);
  const hasN = (k: Comorbidity) => (has.has(k) ? 1 : 0);

  const admission = ADMISSIONS[rng.categorical(ADMISSIONS.map((a) => a.weight(has)))] as (typeof ADMISSIONS)[number];
  const acuteInfection = 'infection' in admission ? 1 : 0;
  const acuteCardiac = 'cardiac' in admission ? 1 : 0;
  const acuteRenal = 'renal' in admission ? 1 : 0;
  const dec = (age - 60) / 10;

  const inflammation = 0.5 * hasN('copd') + 1.2 * acuteInfection + rng.normal(0, 0.8);
  const z: Latent = {
    cardiac: 1.1 * hasN('heart_failure') + 0.5 * hasN('coronary_artery_disease') + 0.4 * hasN('atrial_fibrillation') + 0.8 * acuteCardiac + rng.normal(0, 0.5),
    renal: 1.3 * hasN('chronic_kidney_disease') + 0.3 * hasN('diabetes_type2') + 0.2 * hasN('hypertension') + 0.2 * dec + 0.9 * acuteRenal + rng.normal(0, 0.5),
    inflammation,
    metabolic: 1.2 * hasN('diabetes_type2') + (0.3 * (bmi - 27)) / 5 + rng.normal(0, 0.5),
    frailty: 0.4 * dec + 0.25 * has.size + rng.normal(0, 0.7),
    deterioration: rng.normal(0, 0.8) + 0.3 * inflammation,
    genomic: rng.normal(0, 1),
  };
  const w = riskWeights(p);
  const risk =
    RISK_INTERCEPT +
    w.age * dec + w.cardiac * z.cardiac + w.renal * z.renal + w.inflammation * z.inflammation + w.metabolic * z.metabolic +
    w.frailty * z.frailty + w.deterioration * z.deterioration + w.genomic * z.genomic;

  // Stay and observation window.
  const los = clamp(Math.round(2 + 1.2 * Math.max(0, risk) + rng.normal(0, 1.5) + (acuteInfection ? 1 : 0)), 1, 30);
  const admitDay = EPOCH_2025 + rng.int(0, 333 - los);
  const dischargeDay = admitDay + los;
  const windowStart = dischargeDay - (OBSERVATION_WINDOW_DAYS - 1);
  const ramp = (day: number) => clamp((day - (dischargeDay - 21)) / 21, 0, 1);
  const female = male ? 0 : 1;

  // Vitals: daily, AR(1) day-to-day noise around a personal baseline plus the late ramp.
  const vitals = { timestamps: [] as string[], heart_rate: [] as (number | null)[], systolic_bp: [] as (number | null)[], diastolic_bp: [] as (number | null)[], spo2: [] as (number | null)[], temperature: [] as (number | null)[] };
  const hrBase = 72 + 5 * z.cardiac + 3 * z.inflammation + rng.normal(0, 6);
  const sbpBase = 124 + 12 * hasN('hypertension') + 0.3 * (age - 60) - 4 * Math.max(0, z.cardiac - 1) + rng.normal(0, 9);
  const spo2Base = 97.3 - 1.5 * hasN('copd') - 0.6 * Math.max(0, z.cardiac) + rng.normal(0, 0.7);
  const tempBase = 36.75 + 0.15 * Math.max(0, z.inflammation) + rng.normal(0, 0.15);
  let ar = 0;
  for (let day = windowStart; day <= dischargeDay; day++) {
    ar = 0.7 * ar + rng.normal(0, 1);
    if (day !== admitDay && rng.bernoulli(p.vitalsSkip)) continue;
    const late = ramp(day) * z.deterioration;
    const miss = () => rng.bernoulli(p.valueMissing);
    const hr = hrBase + 3 * ar + 9 * late;
    const sbp = sbpBase + 4 * ar + 3 * late;
    const dbp = 0.55 * sbp + 8 + rng.normal(0, 4);
    const spo2 = spo2Base + 0.4 * ar - 1.8 * late;
    const temp = tempBase + 0.08 * ar + 0.35 * Math.max(0, late) + rng.normal(0, 0.1);
    vitals.timestamps.push(isoDay(day));
    vitals.heart_rate.push(miss() ? null : Math.round(clamp(hr, 35, 190)));
    vitals.systolic_bp.push(miss() ? null : Math.round(clamp(sbp, 70, 230)));
    vitals.diastolic_bp.push(miss() ? null : Math.round(clamp(dbp, 35, 130)));
    vitals.spo2.push(miss() || rng.bernoulli(p.valueMissing) ? null : Math.round(clamp(spo2, 72, 100)));
    vitals.temperature.push(miss() || rng.bernoulli(p.valueMissing) ? null : round(clamp(temp, 34.5, 41.5), 1));
  }

  // Labs: every labIntervalDays, plus the admission draw.
  const labs = { timestamps: [] as string[], wbc: [] as (number | null)[], rbc: [] as (number | null)[], hemoglobin: [] as (number | null)[], platelets: [] as (number | null)[], glucose: [] as (number | null)[], creatinine: [] as (number | null)[], sodium: [] as (number | null)[], potassium: [] as (number | null)[] };
  const labDays: number[] = [];
  for (let day = windowStart + rng.int(0, 6); day < admitDay; day += rng.int(p.labIntervalDays[0], p.labIntervalDays[1])) {
    if (!rng.bernoulli(p.labSkip)) labDays.push(day);
  }
  labDays.push(admitDay);
  if (los >= 5) labDays.push(admitDay + Math.min(los, 7) - 1 + (los > 7 ? 1 : 0));
  const hgbBase = 14.2 - 1.3 * female - 1.6 * hasN('anemia') - 0.5 * Math.max(0, z.renal) + rng.normal(0, 0.8);
  const creatBase = (0.85 + 0.1 * (1 - female)) * Math.exp(0.38 * z.renal) * Math.exp(rng.normal(0, 0.1));
  for (const day of labDays) {
    const late = ramp(day) * z.deterioration;
    const miss = () => rng.bernoulli(p.valueMissing);
    const acute = day >= admitDay ? 1 : 0;
    labs.timestamps.push(isoDay(day));
    labs.wbc.push(miss() ? null : round(clamp(7.2 + 1.7 * z.inflammation + 1.2 * acute * acuteInfection + 0.8 * late + rng.normal(0, 1.2), 1.5, 45), 1));
    const hgb = clamp(hgbBase + rng.normal(0, 0.4), 5, 19);
    labs.rbc.push(miss() ? null : round(clamp(hgb / 3 + rng.normal(0, 0.15), 1.8, 7), 2));
    labs.hemoglobin.push(miss() ? null : round(hgb, 1));
    labs.platelets.push(miss() ? null : Math.round(clamp(250 + 25 * z.inflammation + rng.normal(0, 45), 40, 900)));
    labs.glucose.push(miss() ? null : Math.round(clamp(98 + 42 * z.metabolic + 8 * acute + rng.normal(0, 14), 55, 600)));
    labs.creatinine.push(miss() ? null : round(clamp(creatBase * (1 + 0.18 * Math.max(0, late)) * Math.exp(rng.normal(0, 0.06)), 0.3, 15), 2));
    labs.sodium.push(miss() ? null : Math.round(clamp(140 - 1.4 * z.cardiac + rng.normal(0, 2), 118, 160)));
    labs.potassium.push(miss() ? null : round(clamp(4.1 + 0.3 * z.renal + rng.normal(0, 0.3), 2.6, 7.5), 1));
  }

  // Biology markers: monthly.
  const markers = { timestamps: [] as string[], crp: [] as (number | null)[], d_dimer: [] as (number | null)[], troponin: [] as (number | null)[], bnp: [] as (number | null)[], ldl: [] as (number | null)[] };
  const ldlBase = 112 + 18 * hasN('hyperlipidemia') - 22 * (hasN('coronary_artery_disease') || hasN('hyperlipidemia')) + rng.normal(0, 22);
  for (let k = 0; k < 3; k++) {
    const day = windowStart + 10 + 30 * k + rng.int(-4, 4);
    if (rng.bernoulli(p.markerSkip)) continue;
    const late = ramp(day) * z.deterioration;
    const miss = () => rng.bernoulli(p.valueMissing);
    markers.timestamps.push(isoDay(day));
    markers.crp.push(miss() ? null : round(clamp(Math.exp(1.0 + 0.75 * z.inflammation + 0.3 * late + rng.normal(0, 0.35)), 0.1, 400), 2));
    markers.d_dimer.push(miss() ? null : round(clamp(Math.exp(-0.9 + 0.3 * z.inflammation + 0.2 * z.cardiac + rng.normal(0, 0.3)), 0.05, 40), 2));
    markers.troponin.push(miss() ? null : round(clamp(Math.exp(-4.6 + 0.8 * z.cardiac + rng.normal(0, 0.45)), 0.001, 50), 3));
    markers.bnp.push(miss() ? null : Math.round(clamp(Math.exp(4.2 + 1.0 * z.cardiac + 0.2 * z.renal + rng.normal(0, 0.35)), 5, 30000)));
    markers.ldl.push(miss() ? null : Math.round(clamp(ldlBase + rng.normal(0, 8), 30, 300)));
  }

  // Omics: once.
  let omics: PatientRecord['omics_data'] = { gene_expression: null, metabolomics: null };
  const zVec = LATENT_KEYS.map((k) => z[k]);
  if (!rng.bernoulli(p.omicsMissing)) {
    const om = getOmicsModel();
    const dot = (row: number[]) => row.reduce((s, v, j) => s + v * (zVec[j] as number), 0);
    const genes: Record<string, number> = {};
    GENES.forEach((g, j) => {
      genes[g] = round((om.geneBase[j] as number) + 0.6 * dot(om.geneLoad[j] as number[]) + rng.normal(0, 0.45), 3);
    });
    const mets: Record<string, number> = {};
    METABOLITES.forEach((m, j) => {
      mets[m] = round(Math.exp((om.metBase[j] as number) + 0.25 * dot(om.metLoad[j] as number[]) + rng.normal(0, 0.15)), 3);
    });
    omics = { gene_expression: genes, metabolomics: mets };
  }

  const comorbidities = ORDER.filter((k) => has.has(k));
  const medications = [...new Set(comorbidities.flatMap((k) => MEDICATIONS[k] ?? []))];
  const noisyRisk = risk + rng.normal(0, RISK_LABEL_NOISE_SD);
  const riskLevel: RiskLevel = noisyRisk < RISK_CUTS.lowBelow ? 'Low' : noisyRisk > RISK_CUTS.highAbove ? 'High' : 'Medium';
  const propensity = risk + 0.9 * rng.logistic();
  const adverse = rng.bernoulli(sigmoid(-3.4 + 1.1 * risk)) ? 1 : 0;

  const record: PatientRecord = {
    patient_id: `P_${p.id}_${String(index + 1).padStart(4, '0')}`,
    hospital_id: p.id,
    demographics: { age, gender: male ? 'M' : 'F', ethnicity, bmi, comorbidities, medications },
    clinical_timeseries: vitals,
    lab_results: labs,
    biology_markers: markers,
    omics_data: omics,
    outcomes: { readmission_30d: 0, risk_level: riskLevel, days_to_readmission: null, adverse_event: adverse },
    metadata: {
      admission_date: isoDay(admitDay),
      discharge_date: isoDay(dischargeDay),
      length_of_stay: los,
      diagnosis_codes: [admission.code, ...comorbidities.map((k) => COMORBIDITY_ICD10[k])],
      procedure_codes: [...admission.procedures],
      source: `synthetic:${seed}`,
    },
  };
  // u is drawn for every patient so the stream does not depend on the readmission ranking.
  return { record, risk, propensity, u: rng.next(), z: zVec };
}

export interface GenerateOptions {
  readonly seed: number;
  /** Override the spec 1.2 cohort size (e.g. small cohorts for end-to-end tests). */
  readonly patients?: number;
  /**
   * Generate a hospital that is not in the spec (e.g. H17 for scale benchmarks) with the profile of
   * a known one; its records carry the new id.
   */
  readonly basedOn?: string;
}

export interface GeneratedHospital {
  readonly profile: HospitalProfile;
  readonly records: PatientRecord[];
  /** The latent risk R per record (same order): the oracle score, never written to files. */
  readonly latentRisk: Float64Array;
  /** The latent states per record, row-major [n, LATENT_STATE_NAMES.length]: the oracle, never written to files. */
  readonly latentStates: Float64Array;
}

/** Generates one hospital's cohort. Deterministic in (hospital, seed, patients). */
export function generateHospital(hospitalId: string, options: GenerateOptions): GeneratedHospital {
  const base = hospitalProfile(options.basedOn ?? hospitalId);
  const profile: HospitalProfile = options.basedOn ? { ...base, id: hospitalId, name: `${base.name} (${hospitalId})` } : base;
  const n = options.patients ?? profile.patients;
  if (!Number.isInteger(n) || n < 1) throw new Error(`patients must be a positive integer, got ${n}`);
  const males = new Set(new Rng(`fedcare/sex/v1/${options.seed}/${profile.id}/${n}`).shuffle([...Array(n).keys()]).slice(0, Math.round(profile.maleShare * n)));
  const drafts = [...Array(n).keys()].map((i) => drawPatient(profile, options.seed, i, males.has(i)));

  const k = Math.round(profile.readmissionRate * n);
  const order = [...drafts.keys()].sort((a, b) => (drafts[b] as Draft).propensity - (drafts[a] as Draft).propensity || a - b);
  const cut = k > 0 && k < n ? ((drafts[order[k - 1] as number] as Draft).propensity + (drafts[order[k] as number] as Draft).propensity) / 2 : 0;
  for (let j = 0; j < n; j++) {
    const d = drafts[order[j] as number] as Draft;
    if (j < k) {
      const margin = Math.max(0, d.propensity - cut);
      d.record.outcomes = { ...d.record.outcomes, readmission_30d: 1, days_to_readmission: 1 + Math.floor(29 * d.u ** (1 + margin)) };
    }
  }
  return {
    profile,
    records: drafts.map((d) => d.record),
    latentRisk: Float64Array.from(drafts, (d) => d.risk),
    latentStates: Float64Array.from(drafts.flatMap((d) => d.z)),
  };
}

export { RISK_LEVELS };
