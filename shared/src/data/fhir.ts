/**
 * FHIR R4 import: one patient Bundle (Patient, Encounter, Observation, Condition,
 * MedicationRequest/MedicationStatement, Procedure) becomes one patient record of seed spec 1.1,
 * validated with parseRecord, plus a report of what the bundle held and what was made of it.
 * Pure: runs in a browser tab, a Web Worker and Node (no fs, no DOM).
 *
 * Dates. Every FHIR dateTime is reduced to its local calendar date (the first 10 characters, the
 * date as the source wrote it); day differences are differences of those dates, the same rule the
 * schema uses for length_of_stay.
 *
 * Index admission and outcomes (labels).
 *   - Encounters that start after the patient's death date are ignored for the index (Synthea
 *     writes a few posthumous encounters).
 *   - Inpatient encounters are class IMP (and its v3 specialisations ACUTE, NONAC).
 *   - An inpatient stay has follow-up when the record goes on for ≥ 30 days after its discharge
 *     (a later encounter or observation, i.e. the bundle's last date), or when the patient died no
 *     later than 30 days after the discharge (death closes the 30-day window: the outcome is known).
 *   - Index = the latest inpatient stay with follow-up. Outcomes are then "derived":
 *       readmission_30d = 1 when another inpatient encounter starts 1–30 days after the index
 *         discharge date (days_to_readmission = that day difference, the first one), else 0.
 *         Emergency (EMER) visits are not readmissions on their own: an ED visit that leads to an
 *         admission is followed by its own IMP encounter (Synthea writes EMER + IMP with the same
 *         start), and that IMP is what counts. An IMP starting on the discharge day itself (day 0)
 *         is treated as a transfer / continuation of the stay, not a readmission.
 *       adverse_event = 1 when the patient died before or within 30 days after the index discharge
 *         (in-hospital death included), else 0.
 *       risk_level = null: a clinical risk stratum is not recorded in FHIR and is not derivable
 *         without the model it is meant to train.
 *   - No inpatient stay with follow-up: index = the latest inpatient stay, else the latest
 *     encounter, and every outcome is null ("unknown"); such records cannot be used for supervised
 *     training.
 *
 * Time series. Observations are taken from an 84-day window ending at the index discharge date
 * (the synthetic generator's window), one timestamp per distinct date, same-day repeats averaged,
 * null where a channel was not measured that day. When a modality (vitals / labs / biology markers)
 * has nothing in that window, the window of that modality falls back to the 84 days ending at its
 * latest measurement on or before the index discharge, or, when there is none before it, at its
 * latest measurement overall (which then postdates the index stay); either fallback is a warning.
 * Observations dated after the death date are ignored.
 *
 * LOINC. Vitals: heart rate 8867-4; systolic 8480-6 and diastolic 8462-4 taken from any
 * Observation's components (85354-9 panels in newer Synthea, 55284-4 in older Synthea) or as
 * standalone codes; SpO2 2708-6 / 59408-5 (one Observation counts once); temperature 8310-5 and
 * 8331-1 (oral temperature; Synthea codes most body temperatures with both). Labs: WBC 6690-2
 * (and 26464-8), RBC 789-8 (26453-1), hemoglobin 718-7, platelets 777-3 (26515-7), glucose
 * 2339-0 / 2345-7, creatinine 38483-4 / 2160-0, sodium 2947-0 / 2951-2, potassium 6298-4 / 2823-3.
 * Markers: CRP 1988-5, D-dimer 48065-7 (FEU) / 48066-5 (DDU, ×2 to FEU, an approximation),
 * troponin 6598-7 / 10839-9 / 89579-7, BNP 30934-4, LDL 18262-6 / 2089-1 / 13457-7. BMI 39156-5.
 * NT-proBNP 33762-6 is counted but NOT mapped into `bnp`: it is a different peptide and assay whose
 * values run several times higher than BNP's, with different cut-offs; mixing them in one channel
 * would make the channel mean different things at different hospitals.
 * Units are read from valueQuantity.code (UCUM), else valueQuantity.unit, and converted to the
 * schema's unit; an unknown or missing unit, or a value outside the schema's plausible range after
 * conversion, drops that value (counted in droppedValues, named in warnings).
 *
 * Demographics: age in whole years at the index discharge (at death if that came first); gender
 * male → M, female → F, other/unknown → the US Core birth sex (M/F) if given (a warning), else the
 * bundle fails; ethnicity: US Core ethnicity "Hispanic or Latino" → Hispanic (of any race), else the
 * US Core race OMB category (White → Caucasian, Black or African American → African American,
 * Asian → Asian, others or several → Other); missing → Other (a warning). BMI: the latest 39156-5
 * on or before the index discharge, else the first after it. Comorbidities: SNOMED CT Conditions
 * (snomed.ts) active at the index stay (onset on or before the discharge, not abated before the
 * admission). Medications: ingredient names of MedicationRequests / MedicationStatements authored
 * on or before the index discharge that are still active, or were started in the 84-day window.
 * Procedures: `system|code` of Procedures performed on or before the index discharge,
 * chronological, deduplicated, the first 50.
 */
import { OBSERVATION_WINDOW_DAYS } from './generator';
import { formatIssue, parseRecord } from './records';
import { HOSPITAL_ID_PATTERN, type PatientRecord } from './schema';
import { SNOMED_SYSTEM, comorbidityForSnomed, icd10ForComorbidity } from './snomed';
import {
  COMORBIDITIES,
  LABS,
  MARKERS,
  VITALS,
  type Channel,
  type Comorbidity,
  type Ethnicity,
  type LabName,
  type MarkerName,
  type VitalName,
} from './vocabulary';

export const LOINC_SYSTEM = 'http://loinc.org';
/** Days after the index discharge that a readmission / adverse event is looked for. */
export const FHIR_FOLLOW_UP_DAYS = 30;
export const FHIR_MAX_PROCEDURE_CODES = 50;

// ---------------------------------------------------------------------------------------------
// Public types

export type FhirSeriesChannel = VitalName | LabName | MarkerName;
/** Channels counted in a report: the series channels, BMI, and NT-proBNP (counted, not mapped). */
export type FhirCountedChannel = FhirSeriesChannel | 'bmi' | 'nt_probnp';

export interface FhirImportOptions {
  /** hospital_id of the records (e.g. H4). */
  readonly hospitalId: string;
  /** The bundle's name (file name), used in errors, the report and metadata.source (`fhir:<name>`). */
  readonly source?: string;
  /** Parsed support bundles (Organizations, Locations, Practitioners) for conditional references. */
  readonly support?: readonly unknown[];
}

export interface FhirSeriesWindow {
  /** First and last date of the window (inclusive). */
  readonly start: string;
  readonly end: string;
  /** 'index': ends at the index discharge; 'before' / 'after': fell back to the latest data. */
  readonly kind: 'index' | 'before' | 'after';
}

export interface FhirBundleReport {
  readonly source: string;
  readonly patientId: string;
  readonly modalities: {
    readonly demographics: boolean;
    readonly vitals: boolean;
    readonly labs: boolean;
    readonly biology: boolean;
    readonly omics: false;
    readonly outcomes: 'derived' | 'unknown';
  };
  /** Observations per channel in the whole bundle (one Observation counts once per channel). */
  readonly counts: Record<FhirCountedChannel, number>;
  /** Timestamps (distinct dates) that went into the record per series. */
  readonly series: { readonly vitals: number; readonly labs: number; readonly biology: number };
  readonly windows: {
    readonly vitals: FhirSeriesWindow | null;
    readonly labs: FhirSeriesWindow | null;
    readonly biology: FhirSeriesWindow | null;
  };
  /** The index encounter the record describes. */
  readonly index: {
    readonly class: string;
    readonly admission: string;
    readonly discharge: string;
    /** Days of record after the discharge (to the bundle's last date). */
    readonly followUpDays: number;
    /** The serviceProvider's name (resolved through the bundle or the support bundles), else null. */
    readonly organization: string | null;
  };
  /** Date of death (Patient.deceasedDateTime), else null. */
  readonly deceased: string | null;
  /** Condition resources: mapped to a comorbidity or not (whole bundle, entered-in-error excluded). */
  readonly conditions: { readonly mapped: number; readonly unmapped: number };
  /** MedicationRequest + MedicationStatement resources. */
  readonly medications: number;
  readonly encounters: {
    readonly total: number;
    readonly inpatient: number;
    readonly emergency: number;
    /** Consecutive inpatient stays where the next starts 1–30 days after the previous discharge. */
    readonly readmissionPairs: number;
  };
  /** Conditional references (`Organization?identifier=…`) and how many were resolved. */
  readonly references: { readonly conditional: number; readonly resolved: number };
  /** Values dropped: unknown unit, no numeric value, outside the plausible range. */
  readonly droppedValues: number;
  readonly warnings: string[];
}

export interface FhirImportResult {
  readonly record: PatientRecord;
  readonly report: FhirBundleReport;
}

export interface FhirImportSummary {
  readonly bundles: number;
  readonly records: number;
  readonly modalities: {
    readonly demographics: number;
    readonly vitals: number;
    readonly labs: number;
    readonly biology: number;
    readonly omics: number;
  };
  /** Records with derived outcomes (usable for supervised training) and with unknown outcomes. */
  readonly labelled: number;
  readonly unlabelled: number;
  readonly readmissions: number;
  readonly adverseEvents: number;
  readonly counts: Record<FhirCountedChannel, number>;
  readonly encounters: { readonly total: number; readonly inpatient: number; readonly readmissionPairs: number };
  readonly droppedValues: number;
}

export interface FhirBundleFailure {
  readonly name: string;
  readonly error: string;
}

export interface FhirImportBatch {
  readonly records: PatientRecord[];
  readonly reports: FhirBundleReport[];
  readonly summary: FhirImportSummary;
  /** Bundles that failed (only non-empty with keepGoing; otherwise importFhirBundles throws). */
  readonly failures: FhirBundleFailure[];
}

/** A bundle that cannot be imported: names the bundle, where in it, and what is wrong. */
export class FhirImportError extends Error {
  constructor(
    readonly bundle: string,
    readonly where: string,
    readonly detail: string,
  ) {
    super(`bundle ${bundle}: ${where ? `${where}: ` : ''}${detail}`);
    this.name = 'FhirImportError';
  }
}

/** Several bundles failed: every failure is listed. */
export class FhirBatchError extends Error {
  constructor(readonly failures: readonly FhirBundleFailure[]) {
    super(
      [`${failures.length} FHIR bundle(s) could not be imported:`, ...failures.map((f) => `  - ${f.error}`)].join('\n'),
    );
    this.name = 'FhirBatchError';
  }
}

// ---------------------------------------------------------------------------------------------
// LOINC → channel, units

type Target = FhirCountedChannel;

const LOINC_TARGET: Readonly<Record<string, Target>> = {
  '8867-4': 'heart_rate',
  '8480-6': 'systolic_bp',
  '8462-4': 'diastolic_bp',
  '2708-6': 'spo2',
  '59408-5': 'spo2',
  '8310-5': 'temperature',
  '8331-1': 'temperature',
  '6690-2': 'wbc',
  '26464-8': 'wbc',
  '789-8': 'rbc',
  '26453-1': 'rbc',
  '718-7': 'hemoglobin',
  '777-3': 'platelets',
  '26515-7': 'platelets',
  '2339-0': 'glucose',
  '2345-7': 'glucose',
  '38483-4': 'creatinine',
  '2160-0': 'creatinine',
  '2947-0': 'sodium',
  '2951-2': 'sodium',
  '6298-4': 'potassium',
  '2823-3': 'potassium',
  '1988-5': 'crp',
  '48065-7': 'd_dimer',
  '48066-5': 'd_dimer',
  '6598-7': 'troponin',
  '10839-9': 'troponin',
  '89579-7': 'troponin',
  '30934-4': 'bnp',
  '18262-6': 'ldl',
  '2089-1': 'ldl',
  '13457-7': 'ldl',
  '39156-5': 'bmi',
  '33762-6': 'nt_probnp',
};

/** Code-specific factors applied after the unit conversion. */
const CODE_FACTOR: Readonly<Record<string, number>> = {
  // D-dimer in D-dimer units → fibrinogen-equivalent units (FEU ≈ 2 × DDU).
  '48066-5': 2,
};

/** The LOINC codes the import maps (for documentation and tests). */
export const FHIR_LOINC_CODES: Readonly<Record<string, FhirCountedChannel>> = LOINC_TARGET;

type Convert = (v: number) => number;
const same: Convert = (v) => v;
const times =
  (f: number): Convert =>
  (v) =>
    v * f;

/** Per channel: normalised unit (see normUnit) → conversion into the schema's unit. */
const COUNT_PER_NL = ['10*3/ul', '10*9/l', 'k/ul', '/nl', '10*3/mm3', 'thou/ul', 'x10*3/ul', 'x10*9/l'];
const MMOL = ['mmol/l', 'meq/l', '[meq]/l'];
const UNITS: Readonly<Record<Target, ReadonlyArray<readonly [readonly string[], Convert]>>> = {
  heart_rate: [[['/min', '{beats}/min', 'beats/min', '{beat}/min', 'bpm', '1/min', '{h.b.}/min'], same]],
  systolic_bp: [
    [['mm[hg]', 'mmhg'], same],
    [['kpa'], times(7.50062)],
  ],
  diastolic_bp: [
    [['mm[hg]', 'mmhg'], same],
    [['kpa'], times(7.50062)],
  ],
  spo2: [
    [['%'], same],
    [['1', '{ratio}'], times(100)],
  ],
  temperature: [
    [['cel', '°c', 'c', 'degc', 'celsius', '[degc]'], same],
    [['[degf]', '°f', 'f', 'degf', 'fahrenheit'], (v) => ((v - 32) * 5) / 9],
    [['k', 'kelvin'], (v) => v - 273.15],
  ],
  wbc: [
    [COUNT_PER_NL, same],
    [['/ul', '/mm3'], times(1 / 1000)],
  ],
  rbc: [
    [['10*6/ul', '10*12/l', 'm/ul', '/pl', '10*6/mm3', 'mill/ul', 'x10*6/ul', 'x10*12/l'], same],
  ],
  hemoglobin: [
    [['g/dl'], same],
    [['g/l'], times(1 / 10)],
    [['mmol/l'], times(1.611)],
  ],
  platelets: [
    [COUNT_PER_NL, same],
    [['/ul', '/mm3'], times(1 / 1000)],
  ],
  glucose: [
    [['mg/dl'], same],
    [['mmol/l'], times(18.016)],
  ],
  creatinine: [
    [['mg/dl'], same],
    [['umol/l'], times(1 / 88.4)],
    [['mmol/l'], times(1000 / 88.4)],
  ],
  sodium: [[MMOL, same]],
  potassium: [[MMOL, same]],
  crp: [
    [['mg/l', 'ug/ml'], same],
    [['mg/dl'], times(10)],
  ],
  d_dimer: [
    [['mg/l', 'ug/ml', 'mg/l{feu}', 'ug/ml{feu}', 'mg/l{ddu}', 'ug/ml{ddu}'], same],
    [['ng/ml', 'ug/l', 'ng/ml{feu}', 'ug/l{feu}', 'ng/ml{ddu}', 'ug/l{ddu}'], times(1 / 1000)],
  ],
  troponin: [
    [['ng/ml', 'ug/l'], same],
    [['ng/l', 'pg/ml'], times(1 / 1000)],
  ],
  bnp: [
    [['pg/ml', 'ng/l'], same],
    [['pmol/l'], times(3.46)],
  ],
  ldl: [
    [['mg/dl'], same],
    [['mmol/l'], times(38.67)],
  ],
  bmi: [[['kg/m2', 'kg/m^2', 'kg/m*2', 'kg/(m2)'], same]],
  nt_probnp: [
    [['pg/ml', 'ng/l'], same],
    [['pmol/l'], times(8.457)],
  ],
};

const SERIES_CHANNELS: Readonly<Record<'vitals' | 'labs' | 'biology', readonly Channel[]>> = {
  vitals: VITALS,
  labs: LABS,
  biology: MARKERS,
};
const CHANNEL_INFO = new Map<string, Channel>([...VITALS, ...LABS, ...MARKERS].map((c) => [c.name, c]));
const BMI_RANGE: Channel = { name: 'bmi', unit: 'kg/m²', min: 10, max: 90 };
const NT_PROBNP_RANGE: Channel = { name: 'nt_probnp', unit: 'pg/mL', min: 0, max: 100000 };
const COUNTED: readonly FhirCountedChannel[] = [
  ...VITALS.map((c) => c.name),
  ...LABS.map((c) => c.name),
  ...MARKERS.map((c) => c.name),
  'bmi',
  'nt_probnp',
];

function emptyCounts(): Record<FhirCountedChannel, number> {
  return Object.fromEntries(COUNTED.map((c) => [c, 0])) as Record<FhirCountedChannel, number>;
}

function normUnit(u: string): string {
  return u.trim().toLowerCase().replace(/[µμ]/g, 'u').replace(/\^/g, '*').replace(/\s+/g, '');
}

function convert(target: Target, value: number, unit: string): number | undefined {
  const n = normUnit(unit);
  for (const [units, fn] of UNITS[target]) if (units.includes(n)) return fn(value);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Small JSON helpers

type Json = Record<string, unknown>;

function isObj(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
function obj(x: unknown): Json | undefined {
  return isObj(x) ? x : undefined;
}
function str(x: unknown): string | undefined {
  return typeof x === 'string' && x.length > 0 ? x : undefined;
}
function arr(x: unknown): unknown[] {
  return Array.isArray(x) ? x : [];
}
function codings(concept: unknown): Json[] {
  return arr(obj(concept)?.coding).filter(isObj);
}

/** The calendar date of a FHIR date/dateTime (YYYY, YYYY-MM padded to the first day), or undefined. */
function dateOf(x: unknown): string | undefined {
  const s = str(x);
  if (!s) return undefined;
  let m = /^(\d{4}-\d{2}-\d{2})/.exec(s);
  if (m?.[1]) return Number.isNaN(Date.parse(m[1])) ? undefined : m[1];
  m = /^(\d{4}-\d{2})$/.exec(s);
  if (m?.[1]) return `${m[1]}-01`;
  m = /^(\d{4})$/.exec(s);
  if (m?.[1]) return `${m[1]}-01-01`;
  return undefined;
}

function dayNumber(date: string): number {
  return Math.round(Date.parse(`${date}T00:00:00Z`) / 86_400_000);
}
/** Whole days from a to b (dates). */
function daysBetween(a: string, b: string): number {
  return dayNumber(b) - dayNumber(a);
}
function addDays(date: string, days: number): string {
  return new Date((dayNumber(date) + days) * 86_400_000).toISOString().slice(0, 10);
}
function instant(x: unknown): number {
  const s = str(x);
  if (!s) return Number.NaN;
  const t = Date.parse(s);
  return Number.isNaN(t) ? Date.parse(`${dateOf(s) ?? ''}T00:00:00Z`) : t;
}

function ageAt(birth: string, at: string): number {
  const [by, bm, bd] = birth.split('-').map(Number) as [number, number, number];
  const [ay, am, ad] = at.split('-').map(Number) as [number, number, number];
  return ay - by - (am < bm || (am === bm && ad < bd) ? 1 : 0);
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** Counts repeated warnings: "msg (3×)". */
class Warnings {
  private readonly seen = new Map<string, number>();
  add(msg: string): void {
    this.seen.set(msg, (this.seen.get(msg) ?? 0) + 1);
  }
  list(): string[] {
    return [...this.seen].map(([m, n]) => (n > 1 ? `${m} (${n}×)` : m));
  }
}

// ---------------------------------------------------------------------------------------------
// Medications: RxNorm display → ingredient name

const SALT_WORDS = new Set([
  'hydrochloride', 'hcl', 'hydrocholoride', 'bitartrate', 'sulfate', 'sodium', 'potassium', 'succinate',
  'acetate', 'bromide', 'citrate', 'maleate', 'tartrate', 'besylate', 'calcium', 'mesylate', 'phosphate',
  'fumarate', 'hyclate', 'monohydrate', 'dihydrate', 'trihydrate', 'propionate', 'dipropionate', 'xinafoate',
]);
const KEEP_NAMES = new Set([
  'sodium chloride', 'potassium chloride', 'ferrous sulfate', 'ferrous fumarate', 'magnesium sulfate',
  'sodium bicarbonate', 'calcium carbonate', 'zinc sulfate', 'potassium citrate',
]);
/** Brand-only RxNorm names (no ingredient in the display) seen in Synthea output → ingredients. */
const BRAND_INGREDIENTS: Readonly<Record<string, string>> = {
  lasix: 'furosemide',
  levora: 'ethinyl estradiol/levonorgestrel',
  trinessa: 'ethinyl estradiol/norgestimate',
  jolivette: 'norethindrone',
  camila: 'norethindrone',
  errin: 'norethindrone',
  yaz: 'drospirenone/ethinyl estradiol',
  natazia: 'dienogest/estradiol valerate',
  mirena: 'levonorgestrel',
  kyleena: 'levonorgestrel',
  liletta: 'levonorgestrel',
  nuvaring: 'ethinyl estradiol/etonogestrel',
};
const FORM_CUT =
  /\b(oral|tablets?|capsules?|injection|injectable|solution|suspension|patch|transdermal|extended|release|delayed|chewable|topical|cream|ointment|inhalant|inhaler|inhalation|spray|mucosal|nasal|prefilled|syringe|day|pack|pen|auto-injector|powder|metered|dose|film|coated|disintegrating|vaginal|rectal|suppository|ophthalmic|drops|lotion|gel|kit|product|system)\b.*$/i;

/**
 * The ingredient name(s) of an RxNorm display string, lower-cased: "Acetaminophen 325 MG /
 * Oxycodone Hydrochloride 5 MG Oral Tablet" → "acetaminophen/oxycodone", "24 HR metoprolol
 * succinate 100 MG … [Toprol]" → "metoprolol". Brand-only names (e.g. "Lasix 40mg", "Levora
 * 0.15/30 28 Day Pack") become their ingredients when listed in BRAND_INGREDIENTS, else stay the brand.
 */
export function ingredientName(display: string): string {
  const brand = /\[([^\]]+)\]/.exec(display)?.[1];
  const names: string[] = [];
  for (let part of display.replace(/\[[^\]]*\]/g, ' ').split(/\s\/\s/)) {
    part = (part.split(',')[0] ?? '')
      .replace(/^\s*(nda|anda|bla)\d+\s+/i, ' ')
      .replace(/\babuse-deterrent\b/gi, ' ')
      .replace(/\b\d+(\.\d+)?\s*(hr|hour|day)s?\b/gi, ' ')
      .replace(/^\s*(\d+(\.\d+)?\s*(ml|mg|g|l|actuat|unt)\b\s*)+/i, ' ');
    const beforeDigit = (/^[^\d]*/.exec(part)?.[0] ?? '').replace(FORM_CUT, '');
    const tokens = beforeDigit.toLowerCase().split(/\s+/).filter(Boolean);
    if (!KEEP_NAMES.has(tokens.join(' '))) {
      while (tokens.length > 1 && SALT_WORDS.has(tokens[tokens.length - 1] as string)) tokens.pop();
    }
    const joined = tokens.join(' ');
    const name = Object.hasOwn(BRAND_INGREDIENTS, joined) ? (BRAND_INGREDIENTS[joined] as string) : joined;
    if (name && !names.includes(name)) names.push(name);
  }
  if (names.length > 0) return names.join('/');
  return (brand ?? display).trim().toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// The import

interface Measurement {
  readonly target: Target;
  readonly date: string;
  readonly value: number;
}

interface Enc {
  readonly cls: string;
  readonly start: number;
  readonly startDate: string;
  readonly endDate: string;
  readonly resource: Json;
}

const INPATIENT_CLASSES = new Set(['IMP', 'ACUTE', 'NONAC']);
const RACE_URL = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race';
const ETHNICITY_URL = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity';
const BIRTHSEX_URL = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex';
const RACE_OMB: Readonly<Record<string, Ethnicity>> = {
  '2106-3': 'Caucasian',
  '2054-5': 'African American',
  '2028-9': 'Asian',
  '1002-5': 'Other',
  '2076-8': 'Other',
  '2131-1': 'Other',
};

function parseInput(input: unknown, name: string, where = ''): unknown {
  if (typeof input !== 'string') return input;
  try {
    return JSON.parse(input) as unknown;
  } catch (e) {
    throw new FhirImportError(name, where, `not valid JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
  }
}

/** Index of resources by every way a reference can name them (fullUrl, Type/id, Type?identifier=s|v). */
function indexResources(entries: readonly unknown[], into: Map<string, Json>): void {
  for (const e of entries) {
    const r = obj(obj(e)?.resource);
    const type = str(r?.resourceType);
    if (!r || !type) continue;
    const full = str(obj(e)?.fullUrl);
    if (full) into.set(full, r);
    const id = str(r.id);
    if (id) into.set(`${type}/${id}`, r);
    for (const ident of arr(r.identifier)) {
      const sys = str(obj(ident)?.system);
      const val = str(obj(ident)?.value);
      if (val) {
        into.set(`${type}?identifier=${sys ? `${sys}|` : ''}${val}`, r);
        if (sys) into.set(`${type}?identifier=${val}`, r);
      }
    }
  }
}

/** Counts conditional references (`Type?identifier=…`) in a resource tree and how many resolve. */
function countConditional(x: unknown, refs: Map<string, Json>, acc: { conditional: number; resolved: number }): void {
  if (Array.isArray(x)) {
    for (const v of x) countConditional(v, refs, acc);
  } else if (isObj(x)) {
    for (const [k, v] of Object.entries(x)) {
      if (k === 'reference' && typeof v === 'string') {
        if (v.includes('?')) {
          acc.conditional++;
          if (refs.has(v)) acc.resolved++;
        }
      } else if (typeof v === 'object' && v !== null) {
        countConditional(v, refs, acc);
      }
    }
  }
}

/** Imports one FHIR R4 patient Bundle (parsed JSON or its text) into one validated patient record. */
export function importFhirBundle(bundle: unknown, options: FhirImportOptions): FhirImportResult {
  const name = options.source ?? 'bundle';
  const fail = (where: string, detail: string): never => {
    throw new FhirImportError(name, where, detail);
  };
  if (!HOSPITAL_ID_PATTERN.test(options.hospitalId)) {
    fail('', `hospital id "${options.hospitalId}" is not valid (letters, digits, _ or -, starting with a letter)`);
  }
  const b = parseInput(bundle, name);
  if (!isObj(b)) fail('', `not a FHIR Bundle (got ${Array.isArray(b) ? 'an array' : b === null ? 'null' : typeof b})`);
  const root = b as Json;
  if (root.resourceType !== 'Bundle') {
    fail('resourceType', `expected "Bundle", got ${JSON.stringify(root.resourceType ?? null)}: not a FHIR Bundle`);
  }
  if (!Array.isArray(root.entry)) fail('entry', root.entry === undefined ? 'missing (an empty Bundle)' : 'expected an array');
  const entries = root.entry as unknown[];

  const warnings = new Warnings();
  let dropped = 0;
  const drop = (msg: string): void => {
    dropped++;
    warnings.add(msg);
  };

  // ---- references (own entries + support bundles)
  const refs = new Map<string, Json>();
  indexResources(entries, refs);
  (options.support ?? []).forEach((s, k) => {
    const sb = parseInput(s, name, `support[${k}]`);
    if (!isObj(sb) || sb.resourceType !== 'Bundle' || !Array.isArray(sb.entry)) {
      fail(`support[${k}]`, 'not a FHIR Bundle with entries');
    }
    indexResources((sb as Json).entry as unknown[], refs);
  });

  // ---- resources by type, with their entry index for error paths
  const byType = new Map<string, { i: number; r: Json }[]>();
  entries.forEach((e, i) => {
    if (!isObj(e)) fail(`entry[${i}]`, 'expected an object');
    const r = (e as Json).resource;
    if (!isObj(r)) fail(`entry[${i}].resource`, 'missing');
    const type = str((r as Json).resourceType);
    if (!type) fail(`entry[${i}].resource.resourceType`, 'missing');
    const list = byType.get(type as string) ?? [];
    list.push({ i, r: r as Json });
    byType.set(type as string, list);
  });
  const ofType = (t: string) => byType.get(t) ?? [];

  // ---- Patient
  const patients = ofType('Patient');
  if (patients.length === 0) {
    const support = ['Organization', 'Location', 'Practitioner', 'PractitionerRole'];
    const onlySupport = byType.size > 0 && [...byType.keys()].every((t) => support.includes(t));
    fail(
      '',
      onlySupport
        ? 'no Patient resource (it holds only Organizations/Locations/Practitioners: a support bundle, pass it as support)'
        : 'no Patient resource',
    );
  }
  if (patients.length > 1) fail('', `${patients.length} Patient resources: a bundle must hold exactly one patient`);
  const { i: pi, r: patient } = patients[0] as { i: number; r: Json };
  const pPath = `entry[${pi}].resource`;
  const fullUrl = str(obj(entries[pi])?.fullUrl);
  const rawId = str(patient.id) ?? (fullUrl?.startsWith('urn:uuid:') ? fullUrl.slice('urn:uuid:'.length) : undefined);
  if (!rawId) fail(`${pPath}.id`, 'missing (and no urn:uuid fullUrl to take it from)');
  const hex = (rawId as string).replace(/-/g, '').toLowerCase();
  const patientId = /^[0-9a-f]{12}/.test(hex)
    ? `FHIR_${hex.slice(0, 12)}`
    : `FHIR_${(rawId as string).replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}`;

  const birthDate = dateOf(patient.birthDate);
  if (!birthDate) fail(`${pPath}.birthDate`, patient.birthDate === undefined ? 'missing' : 'not a date');
  const deathDate = dateOf(patient.deceasedDateTime) ?? null;
  if (!deathDate && patient.deceasedBoolean === true) {
    warnings.add('Patient.deceasedBoolean is true without a date: death is not used for outcomes');
  }

  const extensions = arr(patient.extension).filter(isObj);
  let gender: 'M' | 'F';
  if (patient.gender === 'male') gender = 'M';
  else if (patient.gender === 'female') gender = 'F';
  else {
    const birthSex = str(extensions.find((x) => x.url === BIRTHSEX_URL)?.valueCode);
    if (birthSex === 'M' || birthSex === 'F') {
      gender = birthSex;
      warnings.add(`Patient.gender is ${JSON.stringify(patient.gender ?? null)}: used the US Core birth sex ${birthSex}`);
    } else {
      return fail(
        `${pPath}.gender`,
        `${JSON.stringify(patient.gender ?? null)} cannot be mapped to "M" or "F" (the record needs one) and no US Core birth sex M/F is given`,
      );
    }
  }

  const ombCodes = (url: string): { code?: string; display?: string }[] =>
    arr(extensions.find((x) => x.url === url)?.extension)
      .filter(isObj)
      .filter((x) => x.url === 'ombCategory')
      .map((x) => ({ code: str(obj(x.valueCoding)?.code), display: str(obj(x.valueCoding)?.display) }));
  let ethnicity: Ethnicity;
  const eth = ombCodes(ETHNICITY_URL);
  const race = ombCodes(RACE_URL);
  if (eth.some((c) => c.code === '2135-2' || /^hispanic or latino$/i.test(c.display ?? ''))) {
    ethnicity = 'Hispanic';
  } else if (race.length > 0) {
    const mapped = new Set(race.map((c) => (c.code && Object.hasOwn(RACE_OMB, c.code) ? (RACE_OMB[c.code] as Ethnicity) : 'Other')));
    ethnicity = mapped.size === 1 ? ([...mapped][0] as Ethnicity) : 'Other';
  } else {
    ethnicity = 'Other';
    warnings.add('no US Core race/ethnicity extension: ethnicity set to "Other"');
  }

  // ---- Encounters
  const encounters: Enc[] = [];
  for (const { i, r } of ofType('Encounter')) {
    const path = `entry[${i}].resource`;
    const cl = r.class;
    const cls = str(obj(cl)?.code) ?? str(codings(arr(cl)[0])[0]?.code);
    if (!cls) fail(`${path}.class`, cl === undefined ? 'missing' : 'has no code');
    const period = obj(r.period);
    const startDate = dateOf(period?.start);
    if (!startDate) fail(`${path}.period.start`, period?.start === undefined ? 'missing' : 'not a date');
    let endDate = dateOf(period?.end) ?? (startDate as string);
    if (endDate < (startDate as string)) {
      warnings.add('Encounter ends before it starts: end taken as the start');
      endDate = startDate as string;
    }
    encounters.push({ cls: cls as string, start: instant(period?.start), startDate: startDate as string, endDate, resource: r });
  }
  if (encounters.length === 0) fail('', 'no Encounter resource: the record needs an admission (index encounter)');
  encounters.sort((a, b) => a.start - b.start || (a.startDate < b.startDate ? -1 : 1));
  const isInpatient = (e: Enc) => INPATIENT_CLASSES.has(e.cls);
  const inpatientAll = encounters.filter(isInpatient);
  const afterDeath = deathDate ? encounters.filter((e) => e.startDate > deathDate) : [];
  if (afterDeath.length > 0) {
    warnings.add(`${afterDeath.length} encounter(s) start after the death date ${deathDate}: ignored for the index`);
  }
  const usable = encounters.filter((e) => !deathDate || e.startDate <= deathDate);
  const usableInpatient = usable.filter(isInpatient);

  // ---- Observations → measurements
  const counts = emptyCounts();
  const measurements: Measurement[] = [];
  let lastObsDate: string | undefined;
  let afterDeathObs = 0;
  let undated = 0;
  for (const { i, r } of ofType('Observation')) {
    const path = `entry[${i}].resource`;
    if (r.status === 'entered-in-error' || r.status === 'cancelled') continue;
    if (!isObj(r.code)) fail(`${path}.code`, 'missing');
    const date = dateOf(r.effectiveDateTime) ?? dateOf(r.effectiveInstant) ?? dateOf(obj(r.effectivePeriod)?.start) ?? dateOf(r.issued);
    if (date && (!lastObsDate || date > lastObsDate)) lastObsDate = date;

    const items: { target: Target; code: string; holder: Json; where: string }[] = [];
    const pick = (concept: unknown): { target: Target; code: string } | undefined => {
      for (const c of codings(concept)) {
        const code = str(c.code);
        if (code && (c.system === LOINC_SYSTEM || c.system === undefined) && Object.hasOwn(LOINC_TARGET, code)) {
          return { target: LOINC_TARGET[code] as Target, code };
        }
      }
      return undefined;
    };
    const top = pick(r.code);
    if (top) items.push({ ...top, holder: r, where: path });
    arr(r.component).forEach((comp, j) => {
      const c = obj(comp);
      const hit = c ? pick(c.code) : undefined;
      if (c && hit && !items.some((x) => x.target === hit.target)) items.push({ ...hit, holder: c, where: `${path}.component[${j}]` });
    });
    for (const it of items) {
      counts[it.target]++;
      if (!date) {
        undated++;
        continue;
      }
      if (deathDate && date > deathDate) {
        afterDeathObs++;
        continue;
      }
      const vq = it.holder.valueQuantity;
      if (vq === undefined) {
        if (it.holder.dataAbsentReason === undefined) drop(`${it.target}: an Observation without valueQuantity was dropped`);
        continue;
      }
      if (!isObj(vq)) fail(`${it.where}.valueQuantity`, 'expected an object');
      const q = vq as Json;
      if (typeof q.value !== 'number') {
        if (q.value === undefined) {
          drop(`${it.target}: an Observation without a value was dropped`);
          continue;
        }
        fail(`${it.where}.valueQuantity.value`, `expected a number, got ${typeof q.value} ${JSON.stringify(q.value).slice(0, 40)}`);
      }
      const unit = str(q.code) ?? str(q.unit);
      if (!unit) {
        drop(`${it.target}: value without a unit dropped`);
        continue;
      }
      const converted = convert(it.target, q.value as number, unit);
      if (converted === undefined) {
        drop(`${it.target}: unit "${unit}" cannot be converted to ${CHANNEL_INFO.get(it.target)?.unit ?? it.target} (value dropped)`);
        continue;
      }
      measurements.push({ target: it.target, date, value: round3(converted * (CODE_FACTOR[it.code] ?? 1)) });
    }
  }
  if (undated > 0) warnings.add(`${undated} mapped observation(s) without a date ignored`);
  if (afterDeathObs > 0) warnings.add(`${afterDeathObs} mapped observation(s) dated after the death date ignored`);

  // ---- Index encounter and outcomes
  let lastDate = lastObsDate ?? '0000-01-01';
  for (const e of encounters) if (e.endDate > lastDate) lastDate = e.endDate;
  const followUp = (e: Enc): boolean =>
    daysBetween(e.endDate, lastDate) >= FHIR_FOLLOW_UP_DAYS ||
    (deathDate !== null && deathDate >= e.startDate && daysBetween(e.endDate, deathDate) <= FHIR_FOLLOW_UP_DAYS);
  let index = [...usableInpatient].reverse().find(followUp);
  const labelled = index !== undefined;
  if (!index) {
    const latestInpatient = usableInpatient[usableInpatient.length - 1];
    if (latestInpatient) {
      index = latestInpatient;
      warnings.add(
        `the latest inpatient stay (discharged ${latestInpatient.endDate}) has ${daysBetween(latestInpatient.endDate, lastDate)} day(s) of follow-up in the record (< ${FHIR_FOLLOW_UP_DAYS}): outcomes unknown`,
      );
    } else {
      index = usable[usable.length - 1] ?? (encounters[encounters.length - 1] as Enc);
      warnings.add('no inpatient encounter: outcomes unknown; the record describes the latest encounter');
    }
  }
  const idx = index;

  let outcomes: PatientRecord['outcomes'] = {
    readmission_30d: null,
    risk_level: null,
    days_to_readmission: null,
    adverse_event: null,
  };
  if (labelled) {
    const readmit = usableInpatient
      .filter((e) => e !== idx)
      .map((e) => daysBetween(idx.endDate, e.startDate))
      .filter((d) => d >= 1 && d <= FHIR_FOLLOW_UP_DAYS)
      .sort((a, b) => a - b)[0];
    const died = deathDate !== null && daysBetween(idx.endDate, deathDate) <= FHIR_FOLLOW_UP_DAYS;
    outcomes = {
      readmission_30d: readmit !== undefined ? 1 : 0,
      risk_level: null,
      days_to_readmission: readmit ?? null,
      adverse_event: died ? 1 : 0,
    };
  }
  let readmissionPairs = 0;
  for (let k = 1; k < inpatientAll.length; k++) {
    const d = daysBetween((inpatientAll[k - 1] as Enc).endDate, (inpatientAll[k] as Enc).startDate);
    if (d >= 1 && d <= FHIR_FOLLOW_UP_DAYS) readmissionPairs++;
  }

  const admission = idx.startDate;
  const discharge = idx.endDate;
  const refDate = deathDate && deathDate < discharge ? deathDate : discharge;
  const windowStart = addDays(discharge, -(OBSERVATION_WINDOW_DAYS - 1));

  // ---- Demographics
  const age = ageAt(birthDate as string, refDate);
  if (age < 0 || age > 120) fail(`${pPath}.birthDate`, `gives an age of ${age} at ${refDate} (expected 0–120)`);

  const bmis = measurements.filter((m) => m.target === 'bmi').sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  let bmiM = [...bmis].reverse().find((m) => m.date <= discharge);
  if (!bmiM && bmis[0]) {
    bmiM = bmis[0];
    warnings.add(`no BMI on or before the index discharge: used the first after it (${bmiM.date})`);
  }
  let bmi: number | null = null;
  if (bmiM) {
    if (bmiM.value >= BMI_RANGE.min && bmiM.value <= BMI_RANGE.max) bmi = Math.round(bmiM.value * 10) / 10;
    else drop(`bmi: ${bmiM.value} outside the plausible range ${BMI_RANGE.min}–${BMI_RANGE.max} ${BMI_RANGE.unit} dropped`);
  }
  const ntProBnp = counts.nt_probnp;
  if (ntProBnp > 0) {
    warnings.add(`NT-proBNP (LOINC 33762-6) found ${ntProBnp}×: not mapped into bnp (a different assay)`);
    for (const m of measurements) {
      if (m.target === 'nt_probnp' && (m.value < NT_PROBNP_RANGE.min || m.value > NT_PROBNP_RANGE.max)) {
        warnings.add(`NT-proBNP value ${m.value} pg/mL outside ${NT_PROBNP_RANGE.min}–${NT_PROBNP_RANGE.max}`);
      }
    }
  }

  // Conditions
  const comorbidities = new Set<Comorbidity>();
  const unmapped: string[] = [];
  let mappedConditions = 0;
  let unmappedConditions = 0;
  for (const { r } of ofType('Condition')) {
    const vs = str(codings(r.verificationStatus)[0]?.code);
    if (vs === 'entered-in-error' || vs === 'refuted') continue;
    const cs = codings(r.code).filter((c) => str(c.code));
    if (cs.length === 0) {
      warnings.add('a Condition without a code was ignored');
      continue;
    }
    let hit: Comorbidity | undefined;
    for (const c of cs) if (c.system === SNOMED_SYSTEM) hit ??= comorbidityForSnomed(c.code as string);
    if (hit) mappedConditions++;
    else unmappedConditions++;

    const onset = dateOf(r.onsetDateTime) ?? dateOf(obj(r.onsetPeriod)?.start) ?? dateOf(r.recordedDate);
    const abatement = dateOf(r.abatementDateTime) ?? dateOf(obj(r.abatementPeriod)?.end);
    const status = str(codings(r.clinicalStatus)[0]?.code);
    if (onset && onset > discharge) continue;
    if (abatement ? abatement < admission : status === 'inactive' || status === 'resolved' || status === 'remission') continue;
    if (hit) comorbidities.add(hit);
    else {
      const c = cs.find((x) => x.system === SNOMED_SYSTEM) ?? (cs[0] as Json);
      const key = `${str(c.system) ?? 'urn:unknown'}|${c.code as string}`;
      if (!unmapped.includes(key)) unmapped.push(key);
    }
  }
  const comorbidityList = COMORBIDITIES.filter((c) => comorbidities.has(c));

  // Medications
  const medicationNames = new Set<string>();
  const medResources = [...ofType('MedicationRequest'), ...ofType('MedicationStatement')];
  for (const { r } of medResources) {
    const status = str(r.status);
    if (status === 'entered-in-error' || status === 'cancelled' || status === 'draft' || status === 'not-taken') continue;
    const isRequest = r.resourceType === 'MedicationRequest';
    const date = isRequest
      ? dateOf(r.authoredOn)
      : (dateOf(r.effectiveDateTime) ?? dateOf(obj(r.effectivePeriod)?.start) ?? dateOf(r.dateAsserted));
    if (!date || date > discharge) continue;
    const end = isRequest ? undefined : dateOf(obj(r.effectivePeriod)?.end);
    const active = status === 'active' || status === 'on-hold' || (end !== undefined && end >= admission);
    if (!active && date < windowStart) continue;
    let concept = obj(r.medicationCodeableConcept);
    const ref = str(obj(r.medicationReference)?.reference);
    if (!concept && ref) concept = obj(refs.get(ref)?.code);
    const display = str(codings(concept)[0]?.display) ?? str(concept?.text);
    if (!display) {
      warnings.add('a medication without a display name was ignored');
      continue;
    }
    const n = ingredientName(display);
    if (n) medicationNames.add(n);
  }

  // Procedures
  const procs: { date: string; key: string; order: number }[] = [];
  ofType('Procedure').forEach(({ r }, order) => {
    const status = str(r.status);
    if (status === 'entered-in-error' || status === 'not-done') return;
    const date = dateOf(r.performedDateTime) ?? dateOf(obj(r.performedPeriod)?.start);
    if (!date || date > discharge) return;
    const cs = codings(r.code).filter((c) => str(c.code));
    const c = cs.find((x) => x.system === SNOMED_SYSTEM) ?? cs[0];
    if (!c) return;
    procs.push({ date, key: `${str(c.system) ?? 'urn:unknown'}|${c.code as string}`, order });
  });
  procs.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.order - b.order));
  const procedureCodes: string[] = [];
  for (const p of procs) {
    if (procedureCodes.length >= FHIR_MAX_PROCEDURE_CODES) break;
    if (!procedureCodes.includes(p.key)) procedureCodes.push(p.key);
  }

  // ---- Time series
  const windows: { vitals: FhirSeriesWindow | null; labs: FhirSeriesWindow | null; biology: FhirSeriesWindow | null } = {
    vitals: null,
    labs: null,
    biology: null,
  };
  const seriesOut: Record<'vitals' | 'labs' | 'biology', Record<string, unknown>> = { vitals: {}, labs: {}, biology: {} };
  for (const group of ['vitals', 'labs', 'biology'] as const) {
    const channels = SERIES_CHANNELS[group];
    const names = new Set(channels.map((c) => c.name));
    const ms = measurements.filter((m) => names.has(m.target));
    const dates = [...new Set(ms.map((m) => m.date))].sort();
    let win: FhirSeriesWindow | null = null;
    if (dates.some((d) => d >= windowStart && d <= discharge)) {
      win = { start: windowStart, end: discharge, kind: 'index' };
    } else if (dates.length > 0) {
      const before = dates.filter((d) => d <= discharge);
      const end = before[before.length - 1] ?? (dates[dates.length - 1] as string);
      const kind = before.length > 0 ? 'before' : 'after';
      win = { start: addDays(end, -(OBSERVATION_WINDOW_DAYS - 1)), end, kind };
      const gap = Math.abs(daysBetween(discharge, end));
      warnings.add(
        kind === 'before'
          ? `no ${group} in the ${OBSERVATION_WINDOW_DAYS} days before the index discharge ${discharge}: used the ${OBSERVATION_WINDOW_DAYS} days ending at the latest earlier measurement (${end}, ${gap} days before)`
          : `no ${group} on or before the index discharge ${discharge}: used the ${OBSERVATION_WINDOW_DAYS} days ending at the latest measurement (${end}, ${gap} days after; these postdate the index stay)`,
      );
    }
    windows[group] = win;
    const inWin = win ? ms.filter((m) => m.date >= (win as FhirSeriesWindow).start && m.date <= (win as FhirSeriesWindow).end) : [];
    const byDay = new Map<string, Map<string, number[]>>();
    for (const m of inWin) {
      const day = byDay.get(m.date) ?? new Map<string, number[]>();
      day.set(m.target, [...(day.get(m.target) ?? []), m.value]);
      byDay.set(m.date, day);
    }
    const timestamps = [...byDay.keys()].sort();
    const out: Record<string, unknown> = { timestamps };
    for (const c of channels) {
      out[c.name] = timestamps.map((t) => {
        const vs = byDay.get(t)?.get(c.name) ?? [];
        if (vs.length === 0) return null;
        const v = round3(vs.reduce((s, x) => s + x, 0) / vs.length);
        if (v < c.min || v > c.max) {
          drop(`${c.name}: ${v} ${c.unit} outside the plausible range ${c.min}–${c.max} dropped`);
          return null;
        }
        return v;
      });
    }
    // A date whose every value was dropped would be an empty reading: remove it.
    const keep = timestamps.map((_, k) => channels.some((c) => (out[c.name] as (number | null)[])[k] !== null));
    out.timestamps = timestamps.filter((_, k) => keep[k]);
    for (const c of channels) out[c.name] = (out[c.name] as (number | null)[]).filter((_, k) => keep[k]);
    seriesOut[group] = out;
  }

  // ---- References (support bundles)
  const refAcc = { conditional: 0, resolved: 0 };
  countConditional(entries, refs, refAcc);
  if ((options.support?.length ?? 0) > 0 && refAcc.conditional > refAcc.resolved) {
    warnings.add(`${refAcc.conditional - refAcc.resolved} conditional reference(s) not found in the support bundles`);
  }
  const sp = obj(idx.resource.serviceProvider);
  const spRef = str(sp?.reference);
  const organization = str((spRef ? refs.get(spRef) : undefined)?.name) ?? str(sp?.display) ?? null;

  // ---- Record
  const candidate = {
    patient_id: patientId,
    hospital_id: options.hospitalId,
    demographics: {
      age,
      gender,
      ethnicity,
      bmi,
      comorbidities: comorbidityList,
      medications: [...medicationNames].sort(),
    },
    clinical_timeseries: seriesOut.vitals,
    lab_results: seriesOut.labs,
    biology_markers: seriesOut.biology,
    omics_data: { gene_expression: null, metabolomics: null },
    outcomes,
    metadata: {
      admission_date: admission,
      discharge_date: discharge,
      length_of_stay: daysBetween(admission, discharge),
      diagnosis_codes: comorbidityList.map(icd10ForComorbidity),
      procedure_codes: procedureCodes,
      unmapped_codes: unmapped,
      source: `fhir:${name}`,
    },
  };
  const parsed = parseRecord(candidate);
  if (!parsed.ok) {
    return fail('', `the mapped record is invalid (an import bug): ${parsed.issues.map(formatIssue).join('; ')}`);
  }
  const record = parsed.value;

  const report: FhirBundleReport = {
    source: name,
    patientId,
    modalities: {
      demographics: true,
      vitals: record.clinical_timeseries.timestamps.length > 0,
      labs: record.lab_results.timestamps.length > 0,
      biology: record.biology_markers.timestamps.length > 0,
      omics: false,
      outcomes: labelled ? 'derived' : 'unknown',
    },
    counts,
    series: {
      vitals: record.clinical_timeseries.timestamps.length,
      labs: record.lab_results.timestamps.length,
      biology: record.biology_markers.timestamps.length,
    },
    windows,
    index: { class: idx.cls, admission, discharge, followUpDays: daysBetween(discharge, lastDate), organization },
    deceased: deathDate,
    conditions: { mapped: mappedConditions, unmapped: unmappedConditions },
    medications: medResources.length,
    encounters: {
      total: encounters.length,
      inpatient: inpatientAll.length,
      emergency: encounters.filter((e) => e.cls === 'EMER').length,
      readmissionPairs,
    },
    references: refAcc,
    droppedValues: dropped,
    warnings: warnings.list(),
  };
  return { record, report };
}

export interface FhirBatchOptions extends Omit<FhirImportOptions, 'source'> {
  /** Return failed bundles in `failures` instead of throwing a FhirBatchError. */
  readonly keepGoing?: boolean;
}

/**
 * Imports several bundles (`json`: parsed JSON or its text; `list` may be a lazy iterable, so a
 * caller can read one file at a time). Every bundle is tried; unless
 * keepGoing, any failure (including two bundles of the same patient) throws a FhirBatchError that
 * lists them all, so a caller never writes a partial import by accident.
 */
export function importFhirBundles(
  list: Iterable<{ readonly name: string; readonly json: unknown }>,
  options: FhirBatchOptions,
): FhirImportBatch {
  // Support bundles given as text are parsed once, not once per bundle.
  const support = (options.support ?? []).map((s, k) => parseInput(s, 'support', `support[${k}]`));
  const records: PatientRecord[] = [];
  const reports: FhirBundleReport[] = [];
  const failures: FhirBundleFailure[] = [];
  const seen = new Map<string, string>();
  for (const { name, json } of list) {
    try {
      const { record, report } = importFhirBundle(json, { hospitalId: options.hospitalId, support, source: name });
      const first = seen.get(record.patient_id);
      if (first !== undefined) {
        throw new FhirImportError(name, '', `patient ${record.patient_id} was already imported from bundle ${first}`);
      }
      seen.set(record.patient_id, name);
      records.push(record);
      reports.push(report);
    } catch (e) {
      failures.push({ name, error: e instanceof FhirImportError ? e.message : `bundle ${name}: ${(e as Error).message}` });
    }
  }
  if (failures.length > 0 && !options.keepGoing) throw new FhirBatchError(failures);
  return { records, reports, summary: summarizeFhirImport(records, reports), failures };
}

/** Totals over imported bundles: modality counts, labelled / unlabelled, observation counts. */
export function summarizeFhirImport(records: readonly PatientRecord[], reports: readonly FhirBundleReport[]): FhirImportSummary {
  const counts = emptyCounts();
  for (const r of reports) for (const c of COUNTED) counts[c] += r.counts[c];
  const labelled = reports.filter((r) => r.modalities.outcomes === 'derived').length;
  return {
    bundles: reports.length,
    records: records.length,
    modalities: {
      demographics: reports.filter((r) => r.modalities.demographics).length,
      vitals: reports.filter((r) => r.modalities.vitals).length,
      labs: reports.filter((r) => r.modalities.labs).length,
      biology: reports.filter((r) => r.modalities.biology).length,
      omics: 0,
    },
    labelled,
    unlabelled: reports.length - labelled,
    readmissions: records.filter((r) => r.outcomes.readmission_30d === 1).length,
    adverseEvents: records.filter((r) => r.outcomes.adverse_event === 1).length,
    counts,
    encounters: {
      total: reports.reduce((s, r) => s + r.encounters.total, 0),
      inpatient: reports.reduce((s, r) => s + r.encounters.inpatient, 0),
      readmissionPairs: reports.reduce((s, r) => s + r.encounters.readmissionPairs, 0),
    },
    droppedValues: reports.reduce((s, r) => s + r.droppedValues, 0),
  };
}
