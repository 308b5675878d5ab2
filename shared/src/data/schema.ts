/**
 * The patient record of seed spec 1.1 as a zod schema: every field and unit as written there.
 * Missing values are explicit: a series value that was not measured is `null`, a modality that a
 * source does not have is an empty series (no timestamps) or `null` omics, an outcome that is not
 * known (e.g. FHIR without follow-up) is `null`. Validation errors name the record and the field.
 */
import { z } from 'zod';
import {
  COMORBIDITIES,
  ETHNICITIES,
  GENES,
  LABS,
  MARKERS,
  METABOLITES,
  RISK_LEVELS,
  VITALS,
  type Channel,
} from './vocabulary';

const isoDate = z.iso.date({ message: 'expected an ISO date (YYYY-MM-DD)' });

/** ICD-10-CM: letter, two characters, optional dot and up to four more (e.g. I50.9, E11.9, J45.909). */
export const ICD10_PATTERN = /^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$/;
const icd10 = z.string().regex(ICD10_PATTERN, { message: 'expected an ICD-10 code such as I50.9' });

/** A hospital id: short, stable, URL-safe (H1, H2, H3, or a new site's own). */
export const HOSPITAL_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
export const hospitalIdSchema = z
  .string()
  .regex(HOSPITAL_ID_PATTERN, { message: 'expected a hospital id like H1 (letters, digits, _ or -)' });

function channelValue(c: Channel) {
  return z
    .number({ message: `expected a number in ${c.unit} or null` })
    .refine((v) => Number.isFinite(v), { message: `expected a finite number in ${c.unit}` })
    .refine((v) => v >= c.min && v <= c.max, {
      message: `outside the plausible range ${c.min}–${c.max} ${c.unit}: wrong unit?`,
    })
    .nullable();
}

type SeriesShape<C extends readonly Channel[]> = {
  timestamps: z.ZodArray<typeof isoDate>;
} & { [K in C[number]['name']]: z.ZodArray<ReturnType<typeof channelValue>> };

/** A time series: ISO timestamps ascending, and one array per channel of the same length. */
function seriesSchema<const C extends readonly Channel[]>(channels: C) {
  const shape: Record<string, z.ZodType> = { timestamps: z.array(isoDate) };
  for (const c of channels) shape[c.name] = z.array(channelValue(c));
  return z.strictObject(shape as SeriesShape<C>).superRefine((s, ctx) => {
    const series = s as unknown as Record<string, unknown[]>;
    const ts = series.timestamps as string[];
    for (let i = 1; i < ts.length; i++) {
      if ((ts[i] as string) < (ts[i - 1] as string)) {
        ctx.addIssue({ code: 'custom', path: ['timestamps', i], message: 'timestamps must be ascending' });
        break;
      }
    }
    for (const c of channels) {
      const values = series[c.name] as unknown[];
      if (values.length !== ts.length) {
        ctx.addIssue({
          code: 'custom',
          path: [c.name],
          message: `has ${values.length} values for ${ts.length} timestamps`,
        });
      }
    }
  });
}

export const vitalsSchema = seriesSchema(VITALS);
export const labsSchema = seriesSchema(LABS);
export const markersSchema = seriesSchema(MARKERS);

function namedValues(names: readonly string[], what: string) {
  const known = new Set(names);
  return z
    .record(z.string(), z.number({ message: 'expected a number' }).refine(Number.isFinite, 'expected a finite number'))
    .superRefine((rec, ctx) => {
      for (const k of Object.keys(rec)) {
        if (!known.has(k)) ctx.addIssue({ code: 'custom', path: [k], message: `unknown ${what} "${k}"` });
      }
    })
    .nullable();
}

export const omicsSchema = z.strictObject({
  gene_expression: namedValues(GENES, 'gene'),
  metabolomics: namedValues(METABOLITES, 'metabolite'),
});

export const demographicsSchema = z.strictObject({
  age: z.number({ message: 'expected age in years' }).int('expected whole years').min(0).max(120),
  gender: z.enum(['M', 'F'], { message: 'expected "M" or "F"' }),
  ethnicity: z.enum(ETHNICITIES),
  bmi: z.number({ message: 'expected BMI in kg/m² or null' }).min(10).max(90).nullable(),
  comorbidities: z.array(z.enum(COMORBIDITIES as [string, ...string[]])),
  medications: z.array(z.string().min(1)),
});

const binary = z.union([z.literal(0), z.literal(1)], { message: 'expected 0, 1 or null' }).nullable();

export const outcomesSchema = z
  .strictObject({
    readmission_30d: binary,
    risk_level: z.enum(RISK_LEVELS, { message: 'expected "Low", "Medium", "High" or null' }).nullable(),
    days_to_readmission: z.number().int().min(0).max(30).nullable(),
    adverse_event: binary,
  })
  .superRefine((o, ctx) => {
    if (o.readmission_30d === 1 && o.days_to_readmission === null) {
      ctx.addIssue({ code: 'custom', path: ['days_to_readmission'], message: 'required when readmission_30d is 1' });
    }
    if (o.readmission_30d === 0 && o.days_to_readmission !== null) {
      ctx.addIssue({ code: 'custom', path: ['days_to_readmission'], message: 'must be null when readmission_30d is 0' });
    }
  });

function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(b) - Date.parse(a)) / 86_400_000);
}

export const metadataSchema = z
  .strictObject({
    admission_date: isoDate,
    discharge_date: isoDate,
    length_of_stay: z.number().int().min(0),
    diagnosis_codes: z.array(icd10),
    procedure_codes: z.array(z.string().min(1)),
    /** Source codes that have no ICD-10 mapping, kept as `system|code` (e.g. `http://snomed.info/sct|44054006`). */
    unmapped_codes: z.array(z.string().min(1)).optional(),
    /** Where the record came from: `synthetic:<seed>` or `fhir:<bundle name>`. */
    source: z.string().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.discharge_date < m.admission_date) {
      ctx.addIssue({ code: 'custom', path: ['discharge_date'], message: 'is before admission_date' });
    } else if (daysBetween(m.admission_date, m.discharge_date) !== m.length_of_stay) {
      ctx.addIssue({
        code: 'custom',
        path: ['length_of_stay'],
        message: `is ${m.length_of_stay} but the dates are ${daysBetween(m.admission_date, m.discharge_date)} days apart`,
      });
    }
  });

export const patientRecordSchema = z.strictObject({
  patient_id: z.string().min(1, 'expected a non-empty id').max(128),
  hospital_id: hospitalIdSchema,
  demographics: demographicsSchema,
  clinical_timeseries: vitalsSchema,
  lab_results: labsSchema,
  biology_markers: markersSchema,
  omics_data: omicsSchema,
  outcomes: outcomesSchema,
  metadata: metadataSchema,
});

export type PatientRecord = z.infer<typeof patientRecordSchema>;
export type Demographics = PatientRecord['demographics'];
export type Outcomes = PatientRecord['outcomes'];
export type VitalsSeries = PatientRecord['clinical_timeseries'];
export type LabSeries = PatientRecord['lab_results'];
export type MarkerSeries = PatientRecord['biology_markers'];
export type Omics = PatientRecord['omics_data'];
