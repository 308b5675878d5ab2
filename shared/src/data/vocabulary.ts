/**
 * Named vocabularies of the patient record (seed spec 1.1): genes, metabolites, comorbidities with
 * their ICD-10 codes, ethnicities and the series channels with their units.
 */

/** 60 genes: cardiovascular, renal, inflammatory, metabolic, oncology and housekeeping panels. */
export const GENES = [
  'APOE', 'BRCA1', 'IL6', 'TNF', 'IL1B', 'IL10', 'CXCL8', 'CRP', 'NFKB1', 'TLR4',
  'STAT3', 'SOCS3', 'NPPA', 'NPPB', 'MYH7', 'TNNT2', 'ACE', 'AGT', 'NOS3', 'EDN1',
  'HAVCR1', 'LCN2', 'UMOD', 'SLC34A1', 'PKD1', 'INS', 'GCK', 'PPARG', 'TCF7L2', 'SLC2A4',
  'LEP', 'ADIPOQ', 'FTO', 'MTOR', 'SIRT1', 'FOXO3', 'CDKN2A', 'TP53', 'BRCA2', 'EGFR',
  'KRAS', 'MYC', 'VEGFA', 'HIF1A', 'SOD2', 'GPX1', 'CAT', 'HMOX1', 'MMP9', 'TIMP1',
  'SERPINE1', 'F2', 'FGB', 'VWF', 'PCSK9', 'LDLR', 'HMGCR', 'APOB', 'GAPDH', 'ACTB',
] as const;
export type Gene = (typeof GENES)[number];

/** 40 metabolites (plasma, mmol/L-like relative abundances). */
export const METABOLITES = [
  'glucose_6_phosphate', 'lactate', 'pyruvate', 'citrate', 'succinate', 'fumarate', 'malate',
  'alpha_ketoglutarate', 'acetoacetate', 'beta_hydroxybutyrate', 'alanine', 'glutamine',
  'glutamate', 'glycine', 'serine', 'leucine', 'isoleucine', 'valine', 'phenylalanine', 'tyrosine',
  'tryptophan', 'kynurenine', 'creatine', 'creatinine_m', 'urea', 'uric_acid', 'choline',
  'betaine', 'carnitine', 'acetylcarnitine', 'taurine', 'hypoxanthine', 'sphingosine_1_phosphate',
  'trimethylamine_n_oxide', 'indoxyl_sulfate', 'p_cresyl_sulfate', 'cholesterol_ester',
  'triglyceride_c52', 'phosphatidylcholine_c34', 'lysophosphatidylcholine_c16',
] as const;
export type Metabolite = (typeof METABOLITES)[number];

/** Comorbidities the generator and the FHIR import know, with their ICD-10-CM code. */
export const COMORBIDITY_ICD10 = {
  hypertension: 'I10',
  diabetes_type2: 'E11.9',
  chronic_kidney_disease: 'N18.3',
  heart_failure: 'I50.9',
  copd: 'J44.9',
  coronary_artery_disease: 'I25.10',
  atrial_fibrillation: 'I48.91',
  obesity: 'E66.9',
  asthma: 'J45.909',
  depression: 'F32.9',
  hyperlipidemia: 'E78.5',
  anemia: 'D64.9',
} as const;
export type Comorbidity = keyof typeof COMORBIDITY_ICD10;
export const COMORBIDITIES = Object.keys(COMORBIDITY_ICD10) as Comorbidity[];

export const ETHNICITIES = ['Caucasian', 'African American', 'Hispanic', 'Asian', 'Other'] as const;
export type Ethnicity = (typeof ETHNICITIES)[number];

export const RISK_LEVELS = ['Low', 'Medium', 'High'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

/** A numeric channel of a time series: its unit as written in seed spec 1.1 and a plausible range. */
export interface Channel {
  readonly name: string;
  readonly unit: string;
  readonly min: number;
  readonly max: number;
}

/** Ranges are wide physiological bounds: a value outside is a unit or entry error, not a sick patient. */
export const VITALS = [
  { name: 'heart_rate', unit: 'beats/min', min: 20, max: 250 },
  { name: 'systolic_bp', unit: 'mmHg', min: 50, max: 260 },
  { name: 'diastolic_bp', unit: 'mmHg', min: 20, max: 160 },
  { name: 'spo2', unit: '%', min: 50, max: 100 },
  { name: 'temperature', unit: 'Celsius', min: 30, max: 43 },
] as const satisfies readonly Channel[];

export const LABS = [
  { name: 'wbc', unit: '10^9/L', min: 0.1, max: 100 },
  { name: 'rbc', unit: '10^12/L', min: 1, max: 8 },
  { name: 'hemoglobin', unit: 'g/dL', min: 3, max: 22 },
  { name: 'platelets', unit: '10^9/L', min: 5, max: 1500 },
  { name: 'glucose', unit: 'mg/dL', min: 20, max: 1000 },
  { name: 'creatinine', unit: 'mg/dL', min: 0.1, max: 20 },
  { name: 'sodium', unit: 'mEq/L', min: 100, max: 180 },
  { name: 'potassium', unit: 'mEq/L', min: 1.5, max: 9 },
] as const satisfies readonly Channel[];

export const MARKERS = [
  { name: 'crp', unit: 'mg/L', min: 0, max: 500 },
  { name: 'd_dimer', unit: 'mg/L', min: 0, max: 50 },
  { name: 'troponin', unit: 'ng/mL', min: 0, max: 100 },
  { name: 'bnp', unit: 'pg/mL', min: 0, max: 40000 },
  { name: 'ldl', unit: 'mg/dL', min: 10, max: 500 },
] as const satisfies readonly Channel[];

export type VitalName = (typeof VITALS)[number]['name'];
export type LabName = (typeof LABS)[number]['name'];
export type MarkerName = (typeof MARKERS)[number]['name'];
export const VITAL_NAMES = VITALS.map((c) => c.name) as VitalName[];
export const LAB_NAMES = LABS.map((c) => c.name) as LabName[];
export const MARKER_NAMES = MARKERS.map((c) => c.name) as MarkerName[];
