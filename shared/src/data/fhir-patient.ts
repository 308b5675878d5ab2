/**
 * FHIR R4 → one patient record, resource by resource. Shared by the Bundle import (fhir.ts: the
 * entries of one patient Bundle) and the Bulk Data import (fhir-bulk.ts: NDJSON lines of many
 * patients, in any order). Each resource is reduced at once (reduceResource) into the compact
 * per-patient PatientAccumulator — dates, mapped values, codes, counts; never the resource's JSON
 * — and assemblePatient turns an accumulator into a validated record and its report. Everything
 * that depends on another resource (the death date, the index stay, a referenced Medication or
 * Organization) is decided at assembly, so the result does not depend on the order resources
 * arrive in: ties are broken by value, not by arrival (encounters, same-day values, procedures).
 * Pure: runs in a browser tab, a Web Worker and Node (no fs, no DOM). Internal to the data
 * package: not exported from its index (fhir.ts re-exports the public names).
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
 *     (a later encounter or observation, i.e. the patient's last date), or when the patient died no
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
 *   - Encounters are ordered by start instant, then start date, end date, class and service
 *     provider, so "latest" is the same whatever order they came in.
 *
 * Time series. Observations are taken from an 84-day window ending at the index discharge date
 * (the synthetic generator's window), one timestamp per distinct date, same-day repeats averaged
 * (summed in ascending order of value, so the mean is the same whatever order they came in), null
 * where a channel was not measured that day. When a modality (vitals / labs / biology markers)
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
 * conversion, drops that value (counted in droppedValues, named in warnings). A dated Observation
 * whose valueQuantity is malformed (not an object, a value that is not a number) is an error of
 * that resource.
 *
 * Demographics: age in whole years at the index discharge (at death if that came first); gender
 * male → M, female → F, other/unknown → the US Core birth sex (M/F) if given (a warning), else the
 * Patient cannot be imported; ethnicity: US Core ethnicity "Hispanic or Latino" → Hispanic (of any
 * race), else the US Core race OMB category (White → Caucasian, Black or African American →
 * African American, Asian → Asian, others or several → Other); missing → Other (a warning). BMI:
 * the latest 39156-5 on or before the index discharge (of two on one day, the higher), else the
 * first after it (of two on one day, the lower). Comorbidities: SNOMED CT Conditions (snomed.ts)
 * active at the index stay (onset on or before the discharge, not abated before the admission);
 * the unmapped codes of such Conditions are kept in the order they began (onset, then code).
 * Medications: ingredient names of MedicationRequests / MedicationStatements authored on or before
 * the index discharge that are still active, or were started in the 84-day window. Procedures:
 * `system|code` of Procedures performed on or before the index discharge, chronological (date,
 * then time, then code), deduplicated, the first 50.
 */
import { OBSERVATION_WINDOW_DAYS } from './generator';
import { formatIssue, parseRecord } from './records';
import type { PatientRecord } from './schema';
import { SNOMED_SYSTEM, comorbidityForSnomed, icd10ForComorbidity } from './snomed';
import {
  COMORBIDITIES,
  LABS,
  MARKERS,
  VITALS,
  type Channel,
  type Comorbidity,
  type Ethnicity,
} from './vocabulary';
import type { FhirBundleReport, FhirCountedChannel, FhirImportResult, FhirSeriesWindow } from './fhir';

export const LOINC_SYSTEM = 'http://loinc.org';
/** Days after the index discharge that a readmission / adverse event is looked for. */
export const FHIR_FOLLOW_UP_DAYS = 30;
export const FHIR_MAX_PROCEDURE_CODES = 50;

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
export const COUNTED: readonly FhirCountedChannel[] = [
  ...VITALS.map((c) => c.name),
  ...LABS.map((c) => c.name),
  ...MARKERS.map((c) => c.name),
  'bmi',
  'nt_probnp',
];

export function emptyCounts(): Record<FhirCountedChannel, number> {
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

export type Json = Record<string, unknown>;

export function isObj(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
export function obj(x: unknown): Json | undefined {
  return isObj(x) ? x : undefined;
}
export function str(x: unknown): string | undefined {
  return typeof x === 'string' && x.length > 0 ? x : undefined;
}
export function arr(x: unknown): unknown[] {
  return Array.isArray(x) ? x : [];
}
function codings(concept: unknown): Json[] {
  return arr(obj(concept)?.coding).filter(isObj);
}

/**
 * The calendar date of a FHIR date/dateTime (YYYY, YYYY-MM padded to the first day), or undefined
 * (also for a day the calendar does not have, such as 2021-02-30).
 */
function dateOf(x: unknown): string | undefined {
  const s = str(x);
  if (!s) return undefined;
  let m = /^(\d{4}-\d{2}-\d{2})/.exec(s);
  if (m?.[1]) return dayDate(dayNumber(m[1])) === m[1] ? m[1] : undefined;
  m = /^(\d{4}-\d{2})$/.exec(s);
  if (m?.[1]) return `${m[1]}-01`;
  m = /^(\d{4})$/.exec(s);
  if (m?.[1]) return `${m[1]}-01-01`;
  return undefined;
}

/** Days since 1970-01-01 of a date (NaN for a string that is none). */
function dayNumber(date: string): number {
  return Math.round(Date.parse(`${date}T00:00:00Z`) / 86_400_000);
}
/** The date of a day number. */
function dayDate(day: number): string {
  return Number.isFinite(day) ? new Date(day * 86_400_000).toISOString().slice(0, 10) : '';
}
/** Whole days from a to b (dates). */
function daysBetween(a: string, b: string): number {
  return dayNumber(b) - dayNumber(a);
}
function addDays(date: string, days: number): string {
  return dayDate(dayNumber(date) + days);
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
  add(msg: string, times = 1): void {
    if (times > 0) this.seen.set(msg, (this.seen.get(msg) ?? 0) + times);
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
// Errors and references

/**
 * A resource that cannot be used, or a patient whose resources cannot give a record. `field` is
 * the path inside the resource (`valueQuantity.value`, `component[1].valueQuantity`), '' for the
 * resource or the record as a whole; `onPatient`: the field is one of the patient's Patient resource.
 */
export class FhirFieldError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
    readonly onPatient = false,
  ) {
    super(field ? `${field}: ${detail}` : detail);
    this.name = 'FhirFieldError';
  }
}

/** What a reference may resolve to, reduced: a name (Organization, Location), a code's display (Medication). */
export interface FhirRefTarget {
  readonly name?: string | undefined;
  readonly display?: string | undefined;
}
/** Reference targets by every way a reference can name them: fullUrl, `Type/id`, `Type?identifier=[system|]value`. */
export type FhirRefIndex = Map<string, FhirRefTarget>;

const NOTHING_TO_RESOLVE: FhirRefTarget = Object.freeze({});

function conceptDisplay(concept: unknown): string | undefined {
  return str(codings(concept)[0]?.display) ?? str(obj(concept)?.text);
}

/** Adds a resource to a reference index under every key a reference can name it by (`aliases`: e.g. its fullUrl). */
export function indexReferenceTarget(index: FhirRefIndex, r: Json, ...aliases: (string | undefined)[]): void {
  const type = str(r.resourceType);
  if (!type) return;
  const name = str(r.name);
  const display = conceptDisplay(r.code);
  const target: FhirRefTarget = name !== undefined || display !== undefined ? { name, display } : NOTHING_TO_RESOLVE;
  for (const alias of aliases) if (alias) index.set(alias, target);
  const id = str(r.id);
  if (id) index.set(`${type}/${id}`, target);
  for (const ident of arr(r.identifier)) {
    const sys = str(obj(ident)?.system);
    const val = str(obj(ident)?.value);
    if (val) {
      index.set(`${type}?identifier=${sys ? `${sys}|` : ''}${val}`, target);
      if (sys) index.set(`${type}?identifier=${val}`, target);
    }
  }
}

/** Every conditional reference (`Type?identifier=…`) in a resource tree, once per occurrence. */
function conditionalReferences(x: unknown, out: string[] = []): string[] {
  if (Array.isArray(x)) {
    for (const v of x) conditionalReferences(v, out);
  } else if (isObj(x)) {
    for (const [k, v] of Object.entries(x)) {
      if (k === 'reference' && typeof v === 'string') {
        if (v.includes('?')) out.push(v);
      } else if (typeof v === 'object' && v !== null) {
        conditionalReferences(v, out);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The per-patient accumulator

interface PatientFacts {
  readonly patientId: string;
  readonly birthDate: string;
  readonly deathDate: string | null;
  readonly gender: 'M' | 'F';
  readonly ethnicity: Ethnicity;
  readonly warnings: readonly string[];
}

interface EncounterFacts {
  readonly cls: string;
  readonly start: number;
  readonly startDate: string;
  readonly endDate: string;
  /** serviceProvider's reference and display. */
  readonly provider: string | undefined;
  readonly providerDisplay: string | undefined;
}

/** One mapped channel of a dated Observation: its value in the schema's unit, or null and why it was dropped (none: data absent on purpose). */
interface ObservationValue {
  readonly target: Target;
  readonly date: string;
  readonly value: number | null;
  readonly drop: string | undefined;
}

/**
 * The values of dated Observations, one column per field (three numbers a value, the bulk of what
 * an accumulator holds): the channel (its index in COUNTED), the day (days since 1970-01-01), the
 * value in the schema's unit.
 */
interface ValueColumns {
  readonly channel: number[];
  readonly day: number[];
  readonly value: number[];
}

const CHANNEL_INDEX = new Map<Target, number>(COUNTED.map((c, k) => [c, k]));

interface ConditionFacts {
  readonly comorbidity: Comorbidity | undefined;
  /** `system|code` when no comorbidity is mapped. */
  readonly unmapped: string | undefined;
  readonly onset: string | undefined;
  readonly abatement: string | undefined;
  /** clinicalStatus inactive / resolved / remission. */
  readonly closed: boolean;
}

interface MedicationFacts {
  readonly date: string;
  readonly end: string | undefined;
  /** status active / on-hold. */
  readonly activeStatus: boolean;
  /** The ingredient name(s) when the resource names its medication; else `ref` (a Medication to resolve). */
  readonly name: string | undefined;
  readonly ref: string | undefined;
}

interface ProcedureFacts {
  readonly date: string;
  /** The performed instant (ms), for same-day order. */
  readonly at: number;
  readonly key: string;
}

/**
 * What the record needs from one patient's resources, reduced as each resource arrives: no
 * resource JSON is kept. Filled by reduceResource, read by assemblePatient.
 */
export interface PatientAccumulator {
  patient: PatientFacts | undefined;
  readonly encounters: EncounterFacts[];
  readonly values: ValueColumns;
  /** Mapped items of dated Observations without a value: dropped (and why) or absent on purpose. */
  readonly valueless: ObservationValue[];
  /** Observations per counted channel (one Observation counts once per channel). */
  readonly counts: Record<FhirCountedChannel, number>;
  readonly conditions: ConditionFacts[];
  readonly medications: MedicationFacts[];
  readonly procedures: ProcedureFacts[];
  /** Conditional reference → occurrences. */
  readonly conditional: Map<string, number>;
  readonly tally: {
    lastObservation: string | undefined;
    undatedValues: number;
    encountersEndingBeforeStart: number;
    conditionsMapped: number;
    conditionsUnmapped: number;
    conditionsWithoutCode: number;
    medicationResources: number;
  };
}

export function newPatientAccumulator(): PatientAccumulator {
  return {
    patient: undefined,
    encounters: [],
    values: { channel: [], day: [], value: [] },
    valueless: [],
    counts: emptyCounts(),
    conditions: [],
    medications: [],
    procedures: [],
    conditional: new Map(),
    tally: {
      lastObservation: undefined,
      undatedValues: 0,
      encountersEndingBeforeStart: 0,
      conditionsMapped: 0,
      conditionsUnmapped: 0,
      conditionsWithoutCode: 0,
      medicationResources: 0,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Per-resource reduction. A reducer validates and reduces its resource, then returns the change
// to make to the accumulator (or nothing): a resource that fails leaves the accumulator untouched.

type Commit = (acc: PatientAccumulator) => void;
type Reducer = (r: Json, fullUrl: string | undefined) => Commit | undefined;

/** `FHIR_` + the first 12 hex digits of a uuid-like Patient id, else the id made safe. */
export function fhirPatientId(rawId: string): string {
  const hex = rawId.replace(/-/g, '').toLowerCase();
  return /^[0-9a-f]{12}/.test(hex) ? `FHIR_${hex.slice(0, 12)}` : `FHIR_${rawId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}`;
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

function genderOf(patient: Json, extensions: readonly Json[], warnings: string[]): 'M' | 'F' {
  if (patient.gender === 'male') return 'M';
  if (patient.gender === 'female') return 'F';
  const birthSex = str(extensions.find((x) => x.url === BIRTHSEX_URL)?.valueCode);
  if (birthSex === 'M' || birthSex === 'F') {
    warnings.push(`Patient.gender is ${JSON.stringify(patient.gender ?? null)}: used the US Core birth sex ${birthSex}`);
    return birthSex;
  }
  throw new FhirFieldError(
    'gender',
    `${JSON.stringify(patient.gender ?? null)} cannot be mapped to "M" or "F" (the record needs one) and no US Core birth sex M/F is given`,
    true,
  );
}

function ethnicityOf(extensions: readonly Json[], warnings: string[]): Ethnicity {
  const ombCodes = (url: string): { code?: string | undefined; display?: string | undefined }[] =>
    arr(extensions.find((x) => x.url === url)?.extension)
      .filter(isObj)
      .filter((x) => x.url === 'ombCategory')
      .map((x) => ({ code: str(obj(x.valueCoding)?.code), display: str(obj(x.valueCoding)?.display) }));
  const eth = ombCodes(ETHNICITY_URL);
  const race = ombCodes(RACE_URL);
  if (eth.some((c) => c.code === '2135-2' || /^hispanic or latino$/i.test(c.display ?? ''))) return 'Hispanic';
  if (race.length > 0) {
    const mapped = new Set(race.map((c) => (c.code && Object.hasOwn(RACE_OMB, c.code) ? (RACE_OMB[c.code] as Ethnicity) : 'Other')));
    return mapped.size === 1 ? ([...mapped][0] as Ethnicity) : 'Other';
  }
  warnings.push('no US Core race/ethnicity extension: ethnicity set to "Other"');
  return 'Other';
}

/** The Patient: id (else its urn:uuid fullUrl), birth and death dates, gender, ethnicity. */
function reducePatient(patient: Json, fullUrl: string | undefined): Commit {
  const rawId = str(patient.id) ?? (fullUrl?.startsWith('urn:uuid:') ? fullUrl.slice('urn:uuid:'.length) : undefined);
  if (!rawId) throw new FhirFieldError('id', 'missing (and no urn:uuid fullUrl to take it from)', true);
  const birthDate = dateOf(patient.birthDate);
  if (!birthDate) throw new FhirFieldError('birthDate', patient.birthDate === undefined ? 'missing' : 'not a date', true);
  const warnings: string[] = [];
  const deathDate = dateOf(patient.deceasedDateTime) ?? null;
  if (!deathDate && patient.deceasedBoolean === true) {
    warnings.push('Patient.deceasedBoolean is true without a date: death is not used for outcomes');
  }
  const extensions = arr(patient.extension).filter(isObj);
  const gender = genderOf(patient, extensions, warnings);
  const ethnicity = ethnicityOf(extensions, warnings);
  const facts: PatientFacts = { patientId: fhirPatientId(rawId), birthDate, deathDate, gender, ethnicity, warnings };
  return (acc) => {
    acc.patient = facts;
  };
}

function reduceEncounter(r: Json): Commit {
  const cl = r.class;
  const cls = str(obj(cl)?.code) ?? str(codings(arr(cl)[0])[0]?.code);
  if (!cls) throw new FhirFieldError('class', cl === undefined ? 'missing' : 'has no code');
  const period = obj(r.period);
  const startDate = dateOf(period?.start);
  if (!startDate) throw new FhirFieldError('period.start', period?.start === undefined ? 'missing' : 'not a date');
  const end = dateOf(period?.end) ?? startDate;
  const endsBeforeStart = end < startDate;
  const sp = obj(r.serviceProvider);
  const facts: EncounterFacts = {
    cls,
    start: instant(period?.start),
    startDate,
    endDate: endsBeforeStart ? startDate : end,
    provider: str(sp?.reference),
    providerDisplay: str(sp?.display),
  };
  return (acc) => {
    acc.encounters.push(facts);
    if (endsBeforeStart) acc.tally.encountersEndingBeforeStart++;
  };
}

interface MappedItem {
  readonly target: Target;
  readonly code: string;
  /** The Observation or its component that holds the value. */
  readonly holder: Json;
  /** '' or `component[j].`: the holder's path in the resource. */
  readonly prefix: string;
}

function loincTarget(concept: unknown): { target: Target; code: string } | undefined {
  for (const c of codings(concept)) {
    const code = str(c.code);
    if (code && (c.system === LOINC_SYSTEM || c.system === undefined) && Object.hasOwn(LOINC_TARGET, code)) {
      return { target: LOINC_TARGET[code] as Target, code };
    }
  }
  return undefined;
}

/** The channels an Observation maps to: its own code, then its components' (each channel once). */
function mappedItems(r: Json): MappedItem[] {
  const items: MappedItem[] = [];
  const top = loincTarget(r.code);
  if (top) items.push({ ...top, holder: r, prefix: '' });
  arr(r.component).forEach((comp, j) => {
    const c = obj(comp);
    const hit = c ? loincTarget(c.code) : undefined;
    if (c && hit && !items.some((x) => x.target === hit.target)) items.push({ ...hit, holder: c, prefix: `component[${j}].` });
  });
  return items;
}

/** A mapped item's value in the schema's unit, or why it is dropped; a malformed valueQuantity throws. */
function observationValue(it: MappedItem, date: string): ObservationValue {
  const result = (value: number | null, drop?: string): ObservationValue => ({ target: it.target, date, value, drop });
  const vq = it.holder.valueQuantity;
  if (vq === undefined) {
    return it.holder.dataAbsentReason === undefined ? result(null, `${it.target}: an Observation without valueQuantity was dropped`) : result(null);
  }
  if (!isObj(vq)) throw new FhirFieldError(`${it.prefix}valueQuantity`, 'expected an object');
  if (typeof vq.value !== 'number') {
    if (vq.value === undefined) return result(null, `${it.target}: an Observation without a value was dropped`);
    throw new FhirFieldError(`${it.prefix}valueQuantity.value`, `expected a number, got ${typeof vq.value} ${JSON.stringify(vq.value).slice(0, 40)}`);
  }
  const unit = str(vq.code) ?? str(vq.unit);
  if (!unit) return result(null, `${it.target}: value without a unit dropped`);
  const converted = convert(it.target, vq.value, unit);
  if (converted === undefined) {
    return result(null, `${it.target}: unit "${unit}" cannot be converted to ${CHANNEL_INFO.get(it.target)?.unit ?? it.target} (value dropped)`);
  }
  return result(round3(converted * (CODE_FACTOR[it.code] ?? 1)));
}

function addValue(acc: PatientAccumulator, v: ObservationValue): void {
  if (v.value === null) {
    acc.valueless.push(v);
    return;
  }
  acc.values.channel.push(CHANNEL_INDEX.get(v.target) as number);
  acc.values.day.push(dayNumber(v.date));
  acc.values.value.push(v.value);
}

function reduceObservation(r: Json): Commit | undefined {
  if (r.status === 'entered-in-error' || r.status === 'cancelled') return undefined;
  if (!isObj(r.code)) throw new FhirFieldError('code', 'missing');
  const date = dateOf(r.effectiveDateTime) ?? dateOf(r.effectiveInstant) ?? dateOf(obj(r.effectivePeriod)?.start) ?? dateOf(r.issued);
  const items = mappedItems(r);
  const values = date ? items.map((it) => observationValue(it, date)) : [];
  return (acc) => {
    const tally = acc.tally;
    if (date && (tally.lastObservation === undefined || date > tally.lastObservation)) tally.lastObservation = date;
    for (const it of items) acc.counts[it.target]++;
    if (!date) tally.undatedValues += items.length;
    for (const v of values) addValue(acc, v);
  };
}

const CLOSED_CONDITION = new Set(['inactive', 'resolved', 'remission']);

function reduceCondition(r: Json): Commit | undefined {
  const verification = str(codings(r.verificationStatus)[0]?.code);
  if (verification === 'entered-in-error' || verification === 'refuted') return undefined;
  const cs = codings(r.code).filter((c) => str(c.code));
  if (cs.length === 0) {
    return (acc) => {
      acc.tally.conditionsWithoutCode++;
    };
  }
  let hit: Comorbidity | undefined;
  for (const c of cs) if (c.system === SNOMED_SYSTEM) hit ??= comorbidityForSnomed(c.code as string);
  const first = cs.find((x) => x.system === SNOMED_SYSTEM) ?? (cs[0] as Json);
  const facts: ConditionFacts = {
    comorbidity: hit,
    unmapped: hit ? undefined : `${str(first.system) ?? 'urn:unknown'}|${first.code as string}`,
    onset: dateOf(r.onsetDateTime) ?? dateOf(obj(r.onsetPeriod)?.start) ?? dateOf(r.recordedDate),
    abatement: dateOf(r.abatementDateTime) ?? dateOf(obj(r.abatementPeriod)?.end),
    closed: CLOSED_CONDITION.has(str(codings(r.clinicalStatus)[0]?.code) ?? ''),
  };
  return (acc) => {
    if (hit) acc.tally.conditionsMapped++;
    else acc.tally.conditionsUnmapped++;
    acc.conditions.push(facts);
  };
}

const SKIPPED_MEDICATION = new Set(['entered-in-error', 'cancelled', 'draft', 'not-taken']);

function medicationFacts(r: Json): MedicationFacts | undefined {
  const status = str(r.status);
  if (status !== undefined && SKIPPED_MEDICATION.has(status)) return undefined;
  const isRequest = r.resourceType === 'MedicationRequest';
  const date = isRequest
    ? dateOf(r.authoredOn)
    : (dateOf(r.effectiveDateTime) ?? dateOf(obj(r.effectivePeriod)?.start) ?? dateOf(r.dateAsserted));
  if (!date) return undefined;
  const concept = obj(r.medicationCodeableConcept);
  const display = concept ? conceptDisplay(concept) : undefined;
  return {
    date,
    end: isRequest ? undefined : dateOf(obj(r.effectivePeriod)?.end),
    activeStatus: status === 'active' || status === 'on-hold',
    name: display !== undefined ? ingredientName(display) : undefined,
    ref: concept ? undefined : str(obj(r.medicationReference)?.reference),
  };
}

/** MedicationRequest / MedicationStatement: every one is counted; those with a date are kept. */
function reduceMedication(r: Json): Commit {
  const facts = medicationFacts(r);
  return (acc) => {
    acc.tally.medicationResources++;
    if (facts) acc.medications.push(facts);
  };
}

function reduceProcedure(r: Json): Commit | undefined {
  const status = str(r.status);
  if (status === 'entered-in-error' || status === 'not-done') return undefined;
  const performed = dateOf(r.performedDateTime) ? r.performedDateTime : obj(r.performedPeriod)?.start;
  const date = dateOf(performed);
  if (!date) return undefined;
  const cs = codings(r.code).filter((c) => str(c.code));
  const c = cs.find((x) => x.system === SNOMED_SYSTEM) ?? cs[0];
  if (!c) return undefined;
  const facts: ProcedureFacts = { date, at: instant(performed), key: `${str(c.system) ?? 'urn:unknown'}|${c.code as string}` };
  return (acc) => {
    acc.procedures.push(facts);
  };
}

const REDUCERS: Readonly<Record<string, Reducer>> = {
  Patient: reducePatient,
  Encounter: reduceEncounter,
  Observation: reduceObservation,
  Condition: reduceCondition,
  MedicationRequest: reduceMedication,
  MedicationStatement: reduceMedication,
  Procedure: reduceProcedure,
};

/** The resource types that go into the record; every other type only counts its conditional references. */
export const FHIR_RECORD_TYPES: ReadonlySet<string> = new Set(Object.keys(REDUCERS));

/**
 * Reduces one resource of the patient into the accumulator, at once (the caller may drop the
 * resource after). Throws a FhirFieldError, leaving the accumulator as it was, when the resource
 * cannot be used. `fullUrl`: the Bundle entry's, where a Patient without an id takes it from.
 */
export function reduceResource(acc: PatientAccumulator, r: Json, fullUrl?: string): void {
  const type = str(r.resourceType) ?? '';
  const commit = Object.hasOwn(REDUCERS, type) ? (REDUCERS[type] as Reducer)(r, fullUrl) : undefined;
  const conditional = conditionalReferences(r);
  commit?.(acc);
  for (const ref of conditional) acc.conditional.set(ref, (acc.conditional.get(ref) ?? 0) + 1);
}

// ---------------------------------------------------------------------------------------------
// Assembly: one accumulator → one record and its report

export interface AssembleOptions {
  readonly hospitalId: string;
  /** The record's origin: metadata.source is `fhir:<source>`, and the report's source. */
  readonly source: string;
  /** Reference targets came from outside the patient's own resources: unresolved conditional references are then a warning. */
  readonly supportGiven: boolean;
}

type RefLookup = ReadonlyMap<string, FhirRefTarget>;

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A total order, so the index stay does not depend on the order encounters came in. */
function compareEncounters(a: EncounterFacts, b: EncounterFacts): number {
  return (
    a.start - b.start ||
    compareText(a.startDate, b.startDate) ||
    compareText(a.endDate, b.endDate) ||
    compareText(a.cls, b.cls) ||
    compareText(a.provider ?? '', b.provider ?? '') ||
    compareText(a.providerDisplay ?? '', b.providerDisplay ?? '')
  );
}

interface Measurement {
  readonly target: Target;
  readonly date: string;
  readonly value: number;
}

/** Date, channel, then value: same-day values are averaged in this order, whatever order they came in. */
function compareMeasurements(a: Measurement, b: Measurement): number {
  return compareText(a.date, b.date) || compareText(a.target, b.target) || a.value - b.value;
}

function compareValueless(a: ObservationValue, b: ObservationValue): number {
  return compareText(a.date, b.date) || compareText(a.target, b.target) || compareText(a.drop ?? '', b.drop ?? '');
}

interface Drops {
  count: number;
  readonly warnings: Warnings;
}

function drop(drops: Drops, msg: string): void {
  drops.count++;
  drops.warnings.add(msg);
}

function isInpatient(e: EncounterFacts): boolean {
  return INPATIENT_CLASSES.has(e.cls);
}

/** The patient's encounters in order; none is an error (the record needs an admission). */
function sortedEncounters(acc: PatientAccumulator, warnings: Warnings): EncounterFacts[] {
  warnings.add('Encounter ends before it starts: end taken as the start', acc.tally.encountersEndingBeforeStart);
  if (acc.encounters.length === 0) throw new FhirFieldError('', 'no Encounter resource: the record needs an admission (index encounter)');
  return [...acc.encounters].sort(compareEncounters);
}

/** The accumulated values up to the death date (if any), as measurements in a canonical order. */
function valuesUntil(values: ValueColumns, deathDate: string | null): Measurement[] {
  const lastDay = deathDate ? dayNumber(deathDate) : Infinity;
  const dates = new Map<number, string>();
  const out: Measurement[] = [];
  values.day.forEach((day, k) => {
    if (day > lastDay) return;
    let date = dates.get(day);
    if (date === undefined) dates.set(day, (date = dayDate(day)));
    out.push({ target: COUNTED[values.channel[k] as number] as Target, date, value: values.value[k] as number });
  });
  return out.sort(compareMeasurements);
}

/** Mapped values usable for the record (dated, not after death), in a canonical order; drops are counted and named. */
function usableMeasurements(acc: PatientAccumulator, deathDate: string | null, drops: Drops): Measurement[] {
  const measurements = valuesUntil(acc.values, deathDate);
  const valueless = acc.valueless.filter((v) => !deathDate || v.date <= deathDate).sort(compareValueless);
  for (const v of valueless) if (v.drop !== undefined) drop(drops, v.drop);
  const undated = acc.tally.undatedValues;
  const afterDeath = acc.values.day.length + acc.valueless.length - measurements.length - valueless.length;
  if (undated > 0) drops.warnings.add(`${undated} mapped observation(s) without a date ignored`);
  if (afterDeath > 0) drops.warnings.add(`${afterDeath} mapped observation(s) dated after the death date ignored`);
  return measurements;
}

interface IndexStay {
  readonly idx: EncounterFacts;
  readonly labelled: boolean;
  /** The patient's last date (latest encounter end or observation). */
  readonly lastDate: string;
}

/** The latest inpatient stay with follow-up; else the latest stay, else the latest encounter (outcomes unknown). */
function chooseIndex(encounters: readonly EncounterFacts[], usable: readonly EncounterFacts[], lastObservation: string | undefined, deathDate: string | null, warnings: Warnings): IndexStay {
  let lastDate = lastObservation ?? '0000-01-01';
  for (const e of encounters) if (e.endDate > lastDate) lastDate = e.endDate;
  const followUp = (e: EncounterFacts): boolean =>
    daysBetween(e.endDate, lastDate) >= FHIR_FOLLOW_UP_DAYS ||
    (deathDate !== null && deathDate >= e.startDate && daysBetween(e.endDate, deathDate) <= FHIR_FOLLOW_UP_DAYS);
  const usableInpatient = usable.filter(isInpatient);
  const withFollowUp = [...usableInpatient].reverse().find(followUp);
  if (withFollowUp) return { idx: withFollowUp, labelled: true, lastDate };
  const latestInpatient = usableInpatient[usableInpatient.length - 1];
  if (latestInpatient) {
    warnings.add(
      `the latest inpatient stay (discharged ${latestInpatient.endDate}) has ${daysBetween(latestInpatient.endDate, lastDate)} day(s) of follow-up in the record (< ${FHIR_FOLLOW_UP_DAYS}): outcomes unknown`,
    );
    return { idx: latestInpatient, labelled: false, lastDate };
  }
  warnings.add('no inpatient encounter: outcomes unknown; the record describes the latest encounter');
  return { idx: usable[usable.length - 1] ?? (encounters[encounters.length - 1] as EncounterFacts), labelled: false, lastDate };
}

function deriveOutcomes(stay: IndexStay, usableInpatient: readonly EncounterFacts[], deathDate: string | null): PatientRecord['outcomes'] {
  if (!stay.labelled) return { readmission_30d: null, risk_level: null, days_to_readmission: null, adverse_event: null };
  const idx = stay.idx;
  const readmit = usableInpatient
    .filter((e) => e !== idx)
    .map((e) => daysBetween(idx.endDate, e.startDate))
    .filter((d) => d >= 1 && d <= FHIR_FOLLOW_UP_DAYS)
    .sort((a, b) => a - b)[0];
  const died = deathDate !== null && daysBetween(idx.endDate, deathDate) <= FHIR_FOLLOW_UP_DAYS;
  return { readmission_30d: readmit !== undefined ? 1 : 0, risk_level: null, days_to_readmission: readmit ?? null, adverse_event: died ? 1 : 0 };
}

/** Consecutive inpatient stays where the next starts 1–30 days after the previous discharge. */
function countReadmissionPairs(inpatient: readonly EncounterFacts[]): number {
  let pairs = 0;
  for (let k = 1; k < inpatient.length; k++) {
    const d = daysBetween((inpatient[k - 1] as EncounterFacts).endDate, (inpatient[k] as EncounterFacts).startDate);
    if (d >= 1 && d <= FHIR_FOLLOW_UP_DAYS) pairs++;
  }
  return pairs;
}

/** The latest BMI on or before the discharge, else the first after it; outside the plausible range → null (dropped). */
function pickBmi(measurements: readonly Measurement[], discharge: string, drops: Drops): number | null {
  const bmis = measurements.filter((m) => m.target === 'bmi');
  let bmiM = [...bmis].reverse().find((m) => m.date <= discharge);
  if (!bmiM && bmis[0]) {
    bmiM = bmis[0];
    drops.warnings.add(`no BMI on or before the index discharge: used the first after it (${bmiM.date})`);
  }
  if (!bmiM) return null;
  if (bmiM.value >= BMI_RANGE.min && bmiM.value <= BMI_RANGE.max) return Math.round(bmiM.value * 10) / 10;
  drop(drops, `bmi: ${bmiM.value} outside the plausible range ${BMI_RANGE.min}–${BMI_RANGE.max} ${BMI_RANGE.unit} dropped`);
  return null;
}

function warnNtProBnp(count: number, measurements: readonly Measurement[], warnings: Warnings): void {
  if (count === 0) return;
  warnings.add(`NT-proBNP (LOINC 33762-6) found ${count}×: not mapped into bnp (a different assay)`);
  for (const m of measurements) {
    if (m.target === 'nt_probnp' && (m.value < NT_PROBNP_RANGE.min || m.value > NT_PROBNP_RANGE.max)) {
      warnings.add(`NT-proBNP value ${m.value} pg/mL outside ${NT_PROBNP_RANGE.min}–${NT_PROBNP_RANGE.max}`);
    }
  }
}

/**
 * Comorbidities active at the index stay, and the `system|code` of the unmapped active Conditions
 * in the order they began (onset, then code; each once).
 */
function activeConditions(acc: PatientAccumulator, admission: string, discharge: string, warnings: Warnings): { comorbidities: Comorbidity[]; unmapped: string[] } {
  warnings.add('a Condition without a code was ignored', acc.tally.conditionsWithoutCode);
  const found = new Set<Comorbidity>();
  const unmapped: { onset: string; key: string }[] = [];
  for (const c of acc.conditions) {
    if (c.onset && c.onset > discharge) continue;
    if (c.abatement ? c.abatement < admission : c.closed) continue;
    if (c.comorbidity) found.add(c.comorbidity);
    else if (c.unmapped) unmapped.push({ onset: c.onset ?? '', key: c.unmapped });
  }
  unmapped.sort((a, b) => compareText(a.onset, b.onset) || compareText(a.key, b.key));
  return { comorbidities: COMORBIDITIES.filter((c) => found.has(c)), unmapped: [...new Set(unmapped.map((u) => u.key))] };
}

/** Ingredient names of the medications active at the index stay or started in the window, sorted. */
function activeMedications(meds: readonly MedicationFacts[], refs: RefLookup, admission: string, discharge: string, windowStart: string, warnings: Warnings): string[] {
  const names = new Set<string>();
  for (const m of meds) {
    if (m.date > discharge) continue;
    const active = m.activeStatus || (m.end !== undefined && m.end >= admission);
    if (!active && m.date < windowStart) continue;
    let name = m.name;
    if (name === undefined && m.ref !== undefined) {
      const display = refs.get(m.ref)?.display;
      if (display !== undefined) name = ingredientName(display);
    }
    if (name === undefined) warnings.add('a medication without a display name was ignored');
    else if (name) names.add(name);
  }
  return [...names].sort();
}

/** `system|code` of the procedures up to the discharge: chronological, deduplicated, at most 50. */
function procedureCodesUntil(procs: readonly ProcedureFacts[], discharge: string): string[] {
  const at = (p: ProcedureFacts) => (Number.isNaN(p.at) ? 0 : p.at);
  const ordered = procs
    .filter((p) => p.date <= discharge)
    .sort((a, b) => compareText(a.date, b.date) || at(a) - at(b) || compareText(a.key, b.key));
  const codes: string[] = [];
  for (const p of ordered) {
    if (codes.length >= FHIR_MAX_PROCEDURE_CODES) break;
    if (!codes.includes(p.key)) codes.push(p.key);
  }
  return codes;
}

type SeriesGroup = 'vitals' | 'labs' | 'biology';

/** The 84-day window of a modality: ending at the discharge when it has data there, else at its latest data (a warning). */
function seriesWindow(group: SeriesGroup, dates: readonly string[], discharge: string, windowStart: string, warnings: Warnings): FhirSeriesWindow | null {
  if (dates.some((d) => d >= windowStart && d <= discharge)) return { start: windowStart, end: discharge, kind: 'index' };
  if (dates.length === 0) return null;
  const before = dates.filter((d) => d <= discharge);
  const end = before[before.length - 1] ?? (dates[dates.length - 1] as string);
  const kind = before.length > 0 ? 'before' : 'after';
  const gap = Math.abs(daysBetween(discharge, end));
  warnings.add(
    kind === 'before'
      ? `no ${group} in the ${OBSERVATION_WINDOW_DAYS} days before the index discharge ${discharge}: used the ${OBSERVATION_WINDOW_DAYS} days ending at the latest earlier measurement (${end}, ${gap} days before)`
      : `no ${group} on or before the index discharge ${discharge}: used the ${OBSERVATION_WINDOW_DAYS} days ending at the latest measurement (${end}, ${gap} days after; these postdate the index stay)`,
  );
  return { start: addDays(end, -(OBSERVATION_WINDOW_DAYS - 1)), end, kind };
}

/** One modality's series: one timestamp per date in the window, same-day values averaged, out-of-range values dropped. */
function buildSeries(group: SeriesGroup, measurements: readonly Measurement[], discharge: string, windowStart: string, drops: Drops): { window: FhirSeriesWindow | null; series: Record<string, unknown> } {
  const channels = SERIES_CHANNELS[group];
  const names = new Set<string>(channels.map((c) => c.name));
  const ms = measurements.filter((m) => names.has(m.target));
  const win = seriesWindow(group, [...new Set(ms.map((m) => m.date))].sort(), discharge, windowStart, drops.warnings);
  const byDay = new Map<string, Map<string, number[]>>();
  for (const m of win ? ms : []) {
    if (m.date < (win as FhirSeriesWindow).start || m.date > (win as FhirSeriesWindow).end) continue;
    const day = byDay.get(m.date) ?? new Map<string, number[]>();
    day.set(m.target, [...(day.get(m.target) ?? []), m.value]);
    byDay.set(m.date, day);
  }
  const timestamps = [...byDay.keys()].sort();
  const columns = new Map<string, (number | null)[]>();
  for (const c of channels) {
    columns.set(
      c.name,
      timestamps.map((t) => {
        const vs = byDay.get(t)?.get(c.name) ?? [];
        if (vs.length === 0) return null;
        const v = round3(vs.reduce((s, x) => s + x, 0) / vs.length);
        if (v >= c.min && v <= c.max) return v;
        drop(drops, `${c.name}: ${v} ${c.unit} outside the plausible range ${c.min}–${c.max} dropped`);
        return null;
      }),
    );
  }
  // A date whose every value was dropped would be an empty reading: remove it.
  const keep = timestamps.map((_, k) => channels.some((c) => (columns.get(c.name) as (number | null)[])[k] !== null));
  const series: Record<string, unknown> = { timestamps: timestamps.filter((_, k) => keep[k]) };
  for (const c of channels) series[c.name] = (columns.get(c.name) as (number | null)[]).filter((_, k) => keep[k]);
  return { window: win, series };
}

function referenceCounts(acc: PatientAccumulator, refs: RefLookup, supportGiven: boolean, warnings: Warnings): { conditional: number; resolved: number } {
  let conditional = 0;
  let resolved = 0;
  for (const [ref, n] of acc.conditional) {
    conditional += n;
    if (refs.has(ref)) resolved += n;
  }
  if (supportGiven && conditional > resolved) warnings.add(`${conditional - resolved} conditional reference(s) not found in the support bundles`);
  return { conditional, resolved };
}

interface EncounterSets {
  /** In order (see compareEncounters). */
  readonly all: readonly EncounterFacts[];
  /** Not after the death date. */
  readonly usable: readonly EncounterFacts[];
  readonly usableInpatient: readonly EncounterFacts[];
  readonly inpatient: readonly EncounterFacts[];
}

function encounterSets(acc: PatientAccumulator, deathDate: string | null, warnings: Warnings): EncounterSets {
  const all = sortedEncounters(acc, warnings);
  const afterDeath = deathDate ? all.filter((e) => e.startDate > deathDate).length : 0;
  if (afterDeath > 0) warnings.add(`${afterDeath} encounter(s) start after the death date ${deathDate}: ignored for the index`);
  const usable = all.filter((e) => !deathDate || e.startDate <= deathDate);
  return { all, usable, usableInpatient: usable.filter(isInpatient), inpatient: all.filter(isInpatient) };
}

interface ReportParts {
  readonly source: string;
  readonly deathDate: string | null;
  readonly encounters: EncounterSets;
  readonly stay: IndexStay;
  readonly windows: FhirBundleReport['windows'];
  readonly organization: string | null;
  readonly references: FhirBundleReport['references'];
  readonly drops: Drops;
}

function patientReport(acc: PatientAccumulator, record: PatientRecord, parts: ReportParts): FhirBundleReport {
  const { stay, encounters } = parts;
  const { admission_date: admission, discharge_date: discharge } = record.metadata;
  return {
    source: parts.source,
    patientId: record.patient_id,
    modalities: {
      demographics: true,
      vitals: record.clinical_timeseries.timestamps.length > 0,
      labs: record.lab_results.timestamps.length > 0,
      biology: record.biology_markers.timestamps.length > 0,
      omics: false,
      outcomes: stay.labelled ? 'derived' : 'unknown',
    },
    counts: { ...acc.counts },
    series: {
      vitals: record.clinical_timeseries.timestamps.length,
      labs: record.lab_results.timestamps.length,
      biology: record.biology_markers.timestamps.length,
    },
    windows: parts.windows,
    index: { class: stay.idx.cls, admission, discharge, followUpDays: daysBetween(discharge, stay.lastDate), organization: parts.organization },
    deceased: parts.deathDate,
    conditions: { mapped: acc.tally.conditionsMapped, unmapped: acc.tally.conditionsUnmapped },
    medications: acc.tally.medicationResources,
    encounters: {
      total: encounters.all.length,
      inpatient: encounters.inpatient.length,
      emergency: encounters.all.filter((e) => e.cls === 'EMER').length,
      readmissionPairs: countReadmissionPairs(encounters.inpatient),
    },
    references: parts.references,
    droppedValues: parts.drops.count,
    warnings: parts.drops.warnings.list(),
  };
}

/**
 * The record and report of one patient's accumulated resources. Throws a FhirFieldError when they
 * cannot give a valid record (no Patient, no Encounter, an impossible age, an import bug).
 */
export function assemblePatient(acc: PatientAccumulator, refs: RefLookup, options: AssembleOptions): FhirImportResult {
  const p = acc.patient;
  if (!p) throw new FhirFieldError('', 'no Patient resource');
  const warnings = new Warnings();
  for (const w of p.warnings) warnings.add(w);
  const drops: Drops = { count: 0, warnings };
  const { deathDate } = p;

  const encounters = encounterSets(acc, deathDate, warnings);
  const measurements = usableMeasurements(acc, deathDate, drops);
  const stay = chooseIndex(encounters.all, encounters.usable, acc.tally.lastObservation, deathDate, warnings);
  const { idx } = stay;
  const admission = idx.startDate;
  const discharge = idx.endDate;
  const refDate = deathDate && deathDate < discharge ? deathDate : discharge;
  const windowStart = addDays(discharge, -(OBSERVATION_WINDOW_DAYS - 1));

  const age = ageAt(p.birthDate, refDate);
  if (age < 0 || age > 120) throw new FhirFieldError('birthDate', `gives an age of ${age} at ${refDate} (expected 0–120)`, true);
  const bmi = pickBmi(measurements, discharge, drops);
  warnNtProBnp(acc.counts.nt_probnp, measurements, warnings);
  const { comorbidities, unmapped } = activeConditions(acc, admission, discharge, warnings);
  const medications = activeMedications(acc.medications, refs, admission, discharge, windowStart, warnings);
  const vitals = buildSeries('vitals', measurements, discharge, windowStart, drops);
  const labs = buildSeries('labs', measurements, discharge, windowStart, drops);
  const biology = buildSeries('biology', measurements, discharge, windowStart, drops);
  const references = referenceCounts(acc, refs, options.supportGiven, warnings);

  const parsed = parseRecord({
    patient_id: p.patientId,
    hospital_id: options.hospitalId,
    demographics: { age, gender: p.gender, ethnicity: p.ethnicity, bmi, comorbidities, medications },
    clinical_timeseries: vitals.series,
    lab_results: labs.series,
    biology_markers: biology.series,
    omics_data: { gene_expression: null, metabolomics: null },
    outcomes: deriveOutcomes(stay, encounters.usableInpatient, deathDate),
    metadata: {
      admission_date: admission,
      discharge_date: discharge,
      length_of_stay: daysBetween(admission, discharge),
      diagnosis_codes: comorbidities.map(icd10ForComorbidity),
      procedure_codes: procedureCodesUntil(acc.procedures, discharge),
      unmapped_codes: unmapped,
      source: `fhir:${options.source}`,
    },
  });
  if (!parsed.ok) throw new FhirFieldError('', `the mapped record is invalid (an import bug): ${parsed.issues.map(formatIssue).join('; ')}`);
  const record = parsed.value;
  const report = patientReport(acc, record, {
    source: options.source,
    deathDate,
    encounters,
    stay,
    windows: { vitals: vitals.window, labs: labs.window, biology: biology.window },
    organization: (idx.provider ? refs.get(idx.provider)?.name : undefined) ?? idx.providerDisplay ?? null,
    references,
    drops,
  });
  return { record, report };
}
