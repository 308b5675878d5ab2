/**
 * SNOMED CT → comorbidity map for the FHIR import. FHIR sources (Synthea and most US EHR exports)
 * code Conditions in SNOMED CT, the patient record names comorbidities and carries their ICD-10
 * code (vocabulary.ts COMORBIDITY_ICD10), so a Condition is mapped SNOMED → comorbidity → ICD-10.
 *
 * Only concepts that unambiguously mean the comorbidity are listed. Deliberately NOT mapped:
 * prediabetes (15777000: not diabetes), diabetes mellitus without type (73211009), gestational
 * conditions, "history of" findings other than myocardial infarction, and social findings. Every
 * unmapped code is kept in the record's metadata.unmapped_codes as `http://snomed.info/sct|<code>`.
 */
import { COMORBIDITY_ICD10, type Comorbidity } from './vocabulary';

export const SNOMED_SYSTEM = 'http://snomed.info/sct';

export const SNOMED_COMORBIDITY: Readonly<Record<string, Comorbidity>> = {
  // hypertension
  '38341003': 'hypertension', // Hypertensive disorder, systemic arterial
  '59621000': 'hypertension', // Essential hypertension (Synthea)
  '1201005': 'hypertension', // Benign essential hypertension
  '10725009': 'hypertension', // Benign hypertension
  // type 2 diabetes and its Synthea complications that name type 2
  '44054006': 'diabetes_type2', // Diabetes mellitus type 2
  '368581000119106': 'diabetes_type2', // Neuropathy due to type 2 diabetes mellitus
  '422034002': 'diabetes_type2', // Diabetic retinopathy associated with type II diabetes mellitus
  '90781000119102': 'diabetes_type2', // Microalbuminuria due to type 2 diabetes mellitus
  '157141000119108': 'diabetes_type2', // Proteinuria due to type 2 diabetes mellitus
  // chronic kidney disease
  '709044004': 'chronic_kidney_disease', // Chronic kidney disease
  '431855005': 'chronic_kidney_disease', // CKD stage 1
  '431856006': 'chronic_kidney_disease', // CKD stage 2
  '433144002': 'chronic_kidney_disease', // CKD stage 3
  '431857002': 'chronic_kidney_disease', // CKD stage 4
  '433146000': 'chronic_kidney_disease', // CKD stage 5
  '46177005': 'chronic_kidney_disease', // End-stage renal disease
  // heart failure
  '84114007': 'heart_failure', // Heart failure
  '88805009': 'heart_failure', // Chronic congestive heart failure (Synthea)
  '42343007': 'heart_failure', // Congestive heart failure
  // COPD
  '13645005': 'copd', // Chronic obstructive lung disease
  '185086009': 'copd', // Chronic obstructive bronchitis
  '87433001': 'copd', // Pulmonary emphysema
  // coronary artery disease (a myocardial infarction implies it: ICD-10 I21/I25 family)
  '53741008': 'coronary_artery_disease', // Coronary arteriosclerosis ("Coronary Heart Disease" in Synthea)
  '414545008': 'coronary_artery_disease', // Ischemic heart disease
  '22298006': 'coronary_artery_disease', // Myocardial infarction
  '399211009': 'coronary_artery_disease', // History of myocardial infarction
  // atrial fibrillation
  '49436004': 'atrial_fibrillation', // Atrial fibrillation
  // obesity
  '162864005': 'obesity', // Body mass index 30+ - obesity (Synthea)
  '408512008': 'obesity', // Body mass index 40+ - severely obese
  '414916001': 'obesity', // Obesity
  '414915002': 'obesity', // Obese
  // asthma
  '195967001': 'asthma', // Asthma
  '233678006': 'asthma', // Childhood asthma
  // depression
  '370143000': 'depression', // Major depressive disorder
  '36923009': 'depression', // Major depression, single episode
  '35489007': 'depression', // Depressive disorder
  // hyperlipidemia
  '55822004': 'hyperlipidemia', // Hyperlipidemia
  '13644009': 'hyperlipidemia', // Hypercholesterolemia
  '267432004': 'hyperlipidemia', // Pure hypercholesterolemia
  // anemia
  '271737000': 'anemia', // Anemia (Synthea)
  '87522002': 'anemia', // Iron deficiency anemia
};

/** The comorbidity a SNOMED CT code means, or undefined when it is not one the record knows. */
export function comorbidityForSnomed(code: string): Comorbidity | undefined {
  return Object.hasOwn(SNOMED_COMORBIDITY, code) ? SNOMED_COMORBIDITY[code] : undefined;
}

/** The ICD-10-CM code recorded for a comorbidity (vocabulary.ts). */
export function icd10ForComorbidity(c: Comorbidity): string {
  return COMORBIDITY_ICD10[c];
}
