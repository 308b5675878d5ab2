import * as tf from '@tensorflow/tfjs-core';

import { sizeOf } from './init';

/** One trainable tensor of a model, in the model's fixed parameter order. */
export interface Param {
  /** Stable, human-readable path, e.g. `clinical.lstm0.kernel`. */
  readonly name: string;
  readonly shape: readonly number[];
  readonly variable: tf.Variable;
}

/** Collects parameters in declaration order; that order is the flat-weights wire order. */
export class ParamCollector {
  readonly params: Param[] = [];
  private readonly names = new Set<string>();

  add(name: string, shape: readonly number[], values: Float32Array): tf.Variable {
    if (this.names.has(name)) throw new Error(`duplicate parameter name "${name}"`);
    if (values.length !== sizeOf(shape)) {
      throw new Error(`parameter "${name}": ${values.length} initial values for shape [${shape.join(', ')}]`);
    }
    // Engine-level variable names must be globally unique, so let TF.js name them; ours live in Param.
    const initial = tf.tensor(values, [...shape], 'float32');
    const variable = tf.variable(initial, true);
    initial.dispose();
    this.names.add(name);
    this.params.push({ name, shape: [...shape], variable });
    return variable;
  }
}

/** Total number of scalars over a parameter list. */
export function countParams(params: readonly Pick<Param, 'shape'>[]): number {
  let n = 0;
  for (const p of params) n += sizeOf(p.shape);
  return n;
}

export function disposeParams(params: readonly Param[]): void {
  for (const p of params) p.variable.dispose();
}
