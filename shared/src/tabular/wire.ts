/**
 * Runtime schemas of what the tabular task puts on the wire (paired with the types of ./schema.ts;
 * ../protocol/messages.ts uses them): the run's task settings, a hospital's shape (phase 1, in the
 * clear), the layout (coordinator → hospitals), the sums (phase 2; masked with secure aggregation)
 * and the final schema (`fl:stats`).
 */
import { z } from 'zod';
import { MAX_CLASSES, MAX_COLUMNS, MAX_VOCABULARY } from './schema';

const name = z.string().min(1).max(200);
const value = z.string().max(200);
const column = z.strictObject({ name, kind: z.enum(['numeric', 'categorical']), values: z.array(value).max(MAX_VOCABULARY).optional() });

/** The run config's `tabular` block. */
export const tabularTaskSchema = z.strictObject({
  /** The column to predict (binary or multi-class classification over its distinct values). */
  target: name,
  /** A category seen fewer times than this at a hospital never leaves it (folded into "(other)"). */
  min_category_count: z.number().int().min(1).max(10_000).default(5),
});

export const tabularShapeSchema = z.strictObject({
  columns: z.array(column).max(MAX_COLUMNS),
  classes: z.array(value).max(MAX_CLASSES),
});

export const tabularLayoutSchema = z.strictObject({
  target: name,
  columns: z.array(column).max(MAX_COLUMNS),
  classes: z.array(value).min(2).max(MAX_CLASSES),
});

export const tabularSchemaSchema = z.strictObject({
  target: name,
  classes: z.array(value).min(2).max(MAX_CLASSES),
  columns: z
    .array(
      z.discriminatedUnion('kind', [
        z.strictObject({ name, kind: z.literal('numeric'), mean: z.number(), std: z.number().positive(), missing: z.boolean() }),
        z.strictObject({ name, kind: z.literal('categorical'), categories: z.array(value).max(MAX_VOCABULARY + 2) }),
      ]),
    )
    .max(MAX_COLUMNS),
  width: z.number().int().min(1),
  records: z.number().int().min(0),
  class_counts: z.array(z.number().int().min(0)).max(MAX_CLASSES),
});
