/**
 * The hospital side of a round, shared by every host (headless Node client, browser Web Worker,
 * in-process simulations): it owns the hospital's records and model, answers the coordinator's
 * instructions, and never puts a record on the wire — only feature sums (preprocess), model weights
 * and metrics leave. Transport lives in the hosts.
 */
import {
  computeFeatureSums,
  flattenFeatureSums,
  encodeRecords,
  type FeatureBatch,
  type FeatureStats,
  type FeatureSums,
} from '../data/features';
import { OBSERVATION_WINDOW_DAYS } from '../data/generator';
import type { PatientRecord } from '../data/schema';
import { splitByHospital } from '../data/split';
import { createClassifier, type MultimodalRiskClassifier } from '../model/classifier';
import { flattenWeights, sha256Hex, unflattenWeights, weightsFromBytes, weightsToBytes } from '../model/weights';
import { ProtocolError } from '../protocol/errors';
import type { Instruction } from '../protocol/messages';
import { dpSchedule, evaluate, labelledIndices, splitMetrics, trainLocal, type TrainProgress } from '../train';
import { PrivacyBudgetError, PrivacyLedger, type PrivacyLedgerStore } from './privacy-ledger';
import { hashUnit } from '../util/random';
import { generateIdentityKeyPair, type KeyPair } from '../secagg/keys';
import { identityFromCredential } from '../secagg/identity';
import { SecAggClient, checkPinnedIdentity, type SecAggReply, type SecAggRequest } from '../secagg/protocol';
import { assertKeysSigned, exportIdentityPublicKey, exportPublicKey, generateRoundKeyPairs, importIdentityPublicKey, signKeys } from '../secagg/keys';
import { createKeyHolderKeys, unwrapSecretKey, wrapSecretKeyFor, type HeKeys } from '../he/ceremony';
import { decryptSum, encryptUpdate, type HeConfig } from '../he/aggregate';
import { packChunks, unpackChunks, type HeReply, type HeRequest } from '../he/messages';

/** Fraction of the training split held out for validation (early stopping, val_loss). */
export const VALIDATION_FRACTION = 0.1;

export interface ClientProgress {
  stage: 'train' | 'evaluate';
  round: number;
  train?: TrainProgress;
}

export interface HospitalClientOptions {
  /** Seed of the local model's initial weights (replaced by the global model at the first round). */
  modelSeed?: number;
  onProgress?: (p: ClientProgress) => void;
  /** Where this hospital's privacy ledger persists (default: memory, i.e. a fresh budget per process). */
  privacyLedger?: PrivacyLedgerStore;
  /** Long-lived identity key pair that signs SecAgg+ key advertisements. */
  identity?: KeyPair;
  /**
   * The hospital's credential (token): its identity is then derived from it (secagg/identity.ts),
   * the same in every process and tab, so peers' pins survive restarts. Without identity or
   * credential a fresh identity per client object is used.
   */
  credential?: string;
  /** Where the identity keys of other hospitals are pinned (trust on first use), so a restart keeps refusing substitutes. Default: memory. */
  pinStore?: PinStore;
  /**
   * The federation's identity keys as exchanged out of band (hospital id → raw public key, e.g.
   * from each operator's `fedcare identity`). With a roster there is no trust on first use: a
   * hospital not in it, or with another key, is refused; pinStore is then neither read nor written.
   */
  roster?: Readonly<Record<string, Uint8Array>>;
  /**
   * The hospital's own privacy policy: the most ε it will ever spend, whatever a run asks. When set,
   * the hospital trains only in differentially private runs, and stops at the lower of this cap and
   * the run's target_epsilon.
   */
  maxEpsilon?: number;
}

/** Hospital id → raw identity public key, as first seen; persisted by the host. */
export interface PinStore {
  load(): Promise<Record<string, Uint8Array> | undefined>;
  save(pins: Record<string, Uint8Array>): Promise<void>;
}

type CryptoKeyFor = Awaited<ReturnType<typeof generateRoundKeyPairs>>['c']['privateKey'];

/** weights are absent with secure aggregation: the update is then held for the SecAgg+ / HE stages. */
export type TrainReply = { weights?: Uint8Array; weights_sha256?: string; num_samples: number; metrics: Record<string, number> };
export type EvaluateReply = { num_examples: number; metrics: Record<string, number> };

export class HospitalClient {
  readonly train: PatientRecord[];
  readonly val: PatientRecord[];
  readonly test: PatientRecord[];
  private model: MultimodalRiskClassifier | undefined;
  private stats: { runId: string; stats: FeatureStats; seqLen: number } | undefined;
  private encoded: { seqLen: number; train: FeatureBatch; val: FeatureBatch; test: FeatureBatch } | undefined;
  private stopRequested = false;
  private ledger: Promise<PrivacyLedger> | undefined;
  /**
   * What a secure-aggregation round sends masked, held until its masked-input stage: the update
   * (local − global weights, float32) or, in round 0, the flattened feature sums (float64, weight 1).
   */
  private held: { runId: string; round: number; delta: Float32Array | Float64Array; weight: number } | undefined;
  private secagg: { runId: string; round: number; client: SecAggClient } | undefined;
  private he: { runId: string; round: number; holder: string; c: { publicKey: CryptoKeyFor; privateKey: CryptoKeyFor }; keys?: HeKeys & { secret_key: Uint8Array } } | undefined;
  private identity: Promise<KeyPair> | undefined;
  /** Identity keys of other hospitals as first seen (trust on first use); a later substitution is refused. */
  private readonly pins = new Map<string, Uint8Array>();
  private pinsLoaded: Promise<void> | undefined;

  constructor(
    readonly hospitalId: string,
    records: readonly PatientRecord[],
    private readonly options: HospitalClientOptions = {},
  ) {
    const foreign = records.find((r) => r.hospital_id !== hospitalId);
    if (foreign) throw new Error(`record ${foreign.patient_id} belongs to ${foreign.hospital_id}, not ${hospitalId}`);
    // Same fixed 80/20 split as central training; validation is a hashed 10 % of the train split.
    const split = splitByHospital(records, 0.2, 0);
    this.test = split.test;
    this.val = split.train.filter((r) => hashUnit(`val/${r.hospital_id}/${r.patient_id}`) < VALIDATION_FRACTION);
    const valIds = new Set(this.val.map((r) => r.patient_id));
    this.train = split.train.filter((r) => !valIds.has(r.patient_id));
  }

  /** Labelled training examples (what num_samples will be). */
  get numTrainExamples(): number {
    return this.train.filter((r) => r.outcomes.risk_level !== null).length;
  }

  /** Preprocess stage: additive statistics of the training split only. */
  featureSums(seqLen: number): FeatureSums {
    return computeFeatureSums(this.train, { seqLen, windowDays: OBSERVATION_WINDOW_DAYS });
  }

  /** Secure preprocess stage: the sums are kept for round 0's SecAgg+ stages (fixed point) instead of being sent. */
  holdFeatureSums(runId: string, seqLen: number): void {
    this.held = { runId, round: 0, delta: flattenFeatureSums(this.featureSums(seqLen)), weight: 1 };
  }

  /** Installs the run's global statistics (from `fl:stats`); the splits are encoded with them on first use. */
  setStats(runId: string, stats: FeatureStats, seqLen: number): void {
    this.stats = { runId, stats, seqLen };
    this.encoded = undefined;
  }

  hasStatsFor(runId: string): boolean {
    return this.stats?.runId === runId;
  }

  private ensureModel(): MultimodalRiskClassifier {
    this.model ??= createClassifier({}, this.options.modelSeed ?? 0);
    return this.model;
  }

  private async loadGlobal(weights: Uint8Array, sha: string): Promise<MultimodalRiskClassifier> {
    if ((await sha256Hex(weights)) !== sha) throw new ProtocolError('CHECKSUM_MISMATCH', 'global weights do not match their SHA-256', 'weights_sha256');
    const model = this.ensureModel();
    unflattenWeights(model.params, weightsFromBytes(weights));
    return model;
  }

  private requireEncoded(runId: string) {
    const st = this.stats;
    if (!st || st.runId !== runId) throw new ProtocolError('WRONG_STAGE', `no global feature statistics for run ${runId} yet`, 'run_id');
    if (!this.encoded) {
      const cfg = { seqLen: st.seqLen, windowDays: OBSERVATION_WINDOW_DAYS };
      this.encoded = { seqLen: st.seqLen, train: encodeRecords(this.train, st.stats, cfg), val: encodeRecords(this.val, st.stats, cfg), test: encodeRecords(this.test, st.stats, cfg) };
    }
    return this.encoded;
  }

  /** Stops the training in progress at the next minibatch (its fit rejects with "training stopped"). */
  stop(): void {
    this.stopRequested = true;
  }

  async fit(instr: Extract<Instruction, { stage: 'train' }>): Promise<TrainReply> {
    this.stopRequested = false;
    const data = this.requireEncoded(instr.run_id);
    if (data.seqLen !== instr.config.seq_len) throw new ProtocolError('INVALID_PAYLOAD', `seq_len ${instr.config.seq_len} differs from the run's ${data.seqLen}`, 'config.seq_len');
    const model = await this.loadGlobal(instr.weights, instr.weights_sha256);
    const rows = labelledIndices(data.train);
    const dp = instr.config.dp;
    const cap = this.options.maxEpsilon;
    if (cap !== undefined && !dp) throw new Error(`this hospital trains only with differential privacy (its ε cap is ${cap}); the run has none`);
    let privacy: { ledger: PrivacyLedger; sampleRate: number; steps: number; epsilon: number } | undefined;
    if (dp) {
      if (rows.length === 0) throw new Error('no labelled records to train on');
      // δ must be below 1/n, or "releasing one record" would already be (0, δ)-DP.
      if (dp.delta >= 1 / rows.length) throw new Error(`delta ${dp.delta} must be < 1/n = ${(1 / rows.length).toExponential(2)} for this hospital's ${rows.length} training examples`);
      const { sampleRate, steps } = dpSchedule(rows.length, instr.config.batch_size, instr.config.local_epochs);
      const ledger = await this.privacyLedger();
      const epsilon = ledger.preview(sampleRate, dp.noise_multiplier, steps, dp.delta);
      const target = Math.min(dp.target_epsilon, cap ?? Number.POSITIVE_INFINITY);
      if (epsilon > target) throw new PrivacyBudgetError(ledger.spent(dp.delta), epsilon, target);
      privacy = { ledger, sampleRate, steps, epsilon };
    }
    const result = await trainLocal(
      model,
      data.train,
      {
        epochs: instr.config.local_epochs,
        batchSize: instr.config.batch_size,
        learningRate: instr.config.learning_rate,
        proximalMu: instr.config.proximal_mu,
        seed: instr.config.seed,
        ...(dp ? { dp: { noiseMultiplier: dp.noise_multiplier, maxGradNorm: dp.max_grad_norm } } : {}),
      },
      (p) => {
        if (this.stopRequested) throw new Error('training stopped by the hospital');
        this.options.onProgress?.({ stage: 'train', round: instr.round, train: p });
      },
      rows,
    );
    const local = await flattenWeights(model.params);
    const bytes = weightsToBytes(local);
    if (instr.config.secure_aggregation) {
      // Nothing of the update leaves now: it goes out masked (SecAgg+) or encrypted (HE) later.
      const global = weightsFromBytes(instr.weights);
      const delta = new Float32Array(local.length);
      for (let i = 0; i < delta.length; i++) delta[i] = (local[i] as number) - (global[i] as number);
      this.held = { runId: instr.run_id, round: instr.round, delta, weight: result.samples };
    }
    const secure = instr.config.secure_aggregation !== undefined;
    const weightsOut = async () => (secure ? {} : { weights: bytes, weights_sha256: await sha256Hex(bytes) });
    if (privacy && dp) {
      // Spent as soon as the model saw the data: recorded (and persisted) before anything is sent.
      await privacy.ledger.charge({ run_id: instr.run_id, round: instr.round, sample_rate: privacy.sampleRate, noise_multiplier: dp.noise_multiplier, steps: privacy.steps });
      // Only the noised weights leave: no loss or accuracy measured on the training records (they are not private).
      return {
        ...(await weightsOut()),
        num_samples: result.samples,
        metrics: {
          train_seconds: result.seconds,
          privacy_epsilon: privacy.epsilon,
          privacy_delta: dp.delta,
          noise_multiplier: dp.noise_multiplier,
          dp_sample_rate: privacy.sampleRate,
          dp_steps: privacy.steps,
        },
      };
    }
    const trainEval = await evaluate(model, data.train, rows);
    return {
      ...(await weightsOut()),
      num_samples: result.samples,
      metrics: {
        train_loss: trainEval.loss,
        train_accuracy: trainEval.accuracy,
        local_epoch_loss: result.epochs.at(-1)?.loss ?? Number.NaN,
        train_seconds: result.seconds,
      },
    };
  }

  async evaluate(instr: Extract<Instruction, { stage: 'evaluate' }>): Promise<EvaluateReply> {
    const data = this.requireEncoded(instr.run_id);
    const model = await this.loadGlobal(instr.weights, instr.weights_sha256);
    this.options.onProgress?.({ stage: 'evaluate', round: instr.round });
    const test = await evaluate(model, data.test);
    const metrics: Record<string, number> = { ...splitMetrics('test', test) };
    if (data.val.n > 0 && labelledIndices(data.val).length > 0) {
      const val = await evaluate(model, data.val);
      metrics.val_loss = val.loss;
      metrics.val_accuracy = val.accuracy;
    }
    // The fairness figures use each hospital's own test accuracy.
    metrics.accuracy = test.accuracy;
    for (const [k, v] of Object.entries(metrics)) if (!Number.isFinite(v)) delete metrics[k];
    return { num_examples: test.num_examples, metrics };
  }

  /**
   * One SecAgg+ stage of a round (shared/src/secagg/protocol.ts): a fresh SecAggClient per round,
   * signing with this hospital's identity key; masked-input masks the update held since training.
   */
  async secureAggregation(req: SecAggRequest): Promise<SecAggReply> {
    if (req.stage === 'advertise-keys') {
      // Round 0 carries the preprocessing sums: clipping them to one range would corrupt the statistics.
      if (req.round === 0 && !req.config.fixed_point) throw new ProtocolError('INVALID_PAYLOAD', 'round 0 (the preprocessing sums) needs the fixed-point encoding (config.fixed_point)', 'config');
      const identity = await this.identityKeys();
      this.secagg = {
        runId: req.run_id,
        round: req.round,
        client: new SecAggClient({ clientId: this.hospitalId, identity, pins: this.pins, requirePins: this.options.roster !== undefined }),
      };
    }
    const s = this.secagg;
    if (!s || s.runId !== req.run_id || s.round !== req.round) throw new ProtocolError('WRONG_STAGE', `no secure-aggregation round ${req.run_id}/${req.round} under way here (advertise-keys first)`, 'stage');
    switch (req.stage) {
      case 'advertise-keys':
        return s.client.advertise(req);
      case 'share-keys': {
        const reply = await s.client.shareKeys(req);
        await this.pinFirstSeen(s.client.firstSeen);
        return reply;
      }
      case 'masked-input': {
        const held = this.held;
        if (!held || held.runId !== req.run_id || held.round !== req.round) throw new ProtocolError('WRONG_STAGE', `no trained update held for ${req.run_id}/${req.round}`, 'stage');
        this.held = undefined;
        return s.client.maskedInput(req, held.delta, held.weight);
      }
      case 'consistency-check':
        return s.client.consistencyCheck(req);
      case 'unmask':
        return s.client.unmask(req);
    }
  }

  private async identityKeys() {
    this.identity ??= this.options.identity
      ? Promise.resolve(this.options.identity)
      : this.options.credential
        ? identityFromCredential(this.options.credential)
        : generateIdentityKeyPair();
    this.pinsLoaded ??= (async () => {
      const roster = this.options.roster;
      for (const [h, pk] of Object.entries(roster ?? (await this.options.pinStore?.load()) ?? {})) this.pins.set(h, pk);
    })();
    await this.pinsLoaded;
    return this.identity;
  }

  /** Checks a relayed advertisement: its identity key against the pin (pinning it on first sight), then its signature. */
  private async checkAdvertisement(ad: { client_id: string; c_pk: Uint8Array; s_pk: Uint8Array; identity_pk: Uint8Array; signature: Uint8Array }, runId: string, round: number): Promise<void> {
    const pinned = checkPinnedIdentity(this.pins, ad.client_id, ad.identity_pk, this.options.roster !== undefined);
    await assertKeysSigned(await importIdentityPublicKey(ad.identity_pk), { run_id: runId, round, client_id: ad.client_id, c_pk: ad.c_pk, s_pk: ad.s_pk }, ad.signature);
    if (!pinned) await this.pinFirstSeen([[ad.client_id, ad.identity_pk]]);
  }

  /** Trust on first use: pins identity keys not pinned yet and persists them, so later rounds (and restarts) refuse a substitute. A roster is never extended. */
  private async pinFirstSeen(seen: Iterable<readonly [string, Uint8Array]>): Promise<void> {
    if (this.options.roster) return;
    let added = false;
    for (const [h, pk] of seen) {
      if (!this.pins.has(h)) {
        this.pins.set(h, pk);
        added = true;
      }
    }
    if (added) await this.options.pinStore?.save(Object.fromEntries(this.pins));
  }

  /**
   * One HE stage of a round (../he/messages.ts): a signed X25519 key for the ceremony; as the
   * round's key holder, the BFV keys and the secret key sealed to each peer; the held update
   * encrypted; as the holder, the decrypted weighted mean of the sum.
   */
  async homomorphic(req: HeRequest): Promise<HeReply> {
    const base = { run_id: req.run_id, round: req.round, client_id: this.hospitalId };
    if (req.stage === 'he-keys') {
      const identity = await this.identityKeys();
      const { c } = await generateRoundKeyPairs();
      this.he = { runId: req.run_id, round: req.round, holder: req.holder, c };
      const cPk = await exportPublicKey(c.publicKey);
      const keys = { run_id: req.run_id, round: req.round, client_id: this.hospitalId, c_pk: cPk, s_pk: cPk };
      return { stage: 'he-keys', ...base, c_pk: cPk, s_pk: cPk, identity_pk: await exportIdentityPublicKey(identity.publicKey), signature: await signKeys(identity.privateKey, keys) };
    }
    const st = this.he;
    if (!st || st.runId !== req.run_id || st.round !== req.round) throw new ProtocolError('WRONG_STAGE', `no HE round ${req.run_id}/${req.round} under way here (he-keys first)`, 'stage');
    const ctx = (recipient: string) => ({ runId: req.run_id, holder: st.holder, recipient });
    if (req.stage === 'he-setup') {
      if (st.holder !== this.hospitalId) throw new ProtocolError('FORBIDDEN', `${this.hospitalId} is not this round's key holder (${st.holder} is)`, 'stage');
      for (const p of req.peers) await this.checkAdvertisement(p, req.run_id, req.round);
      const keys = await createKeyHolderKeys(req.config.params);
      st.keys = keys;
      const wrapped = [];
      for (const p of req.peers) wrapped.push({ to: p.client_id, ciphertext: await wrapSecretKeyFor(p.c_pk, st.c.privateKey, keys, ctx(p.client_id)) });
      return { stage: 'he-setup', ...base, public_key: keys.public_key, wrapped };
    }
    if (req.stage === 'he-input') {
      await this.checkAdvertisement(req.holder, req.run_id, req.round);
      if (req.holder.client_id !== st.holder) throw new ProtocolError('INVALID_PAYLOAD', `the key holder is ${req.holder.client_id}, not ${st.holder} as announced`, 'holder');
      if (!st.keys) {
        if (!req.wrapped) throw new ProtocolError('INVALID_PAYLOAD', 'no sealed secret key for this hospital', 'wrapped');
        st.keys = await unwrapSecretKey(req.wrapped, st.c.privateKey, req.holder.c_pk, { params: req.config.params, public_key: req.public_key }, ctx(this.hospitalId));
      }
      const held = this.held;
      if (!held || held.runId !== req.run_id || held.round !== req.round) throw new ProtocolError('WRONG_STAGE', `no trained update held for ${req.run_id}/${req.round}`, 'stage');
      this.held = undefined;
      if (!(held.delta instanceof Float32Array)) throw new ProtocolError('WRONG_STAGE', 'HE carries model updates only (the preprocessing sums go through SecAgg+)', 'stage');
      const ciphertexts = await encryptUpdate(held.delta, held.weight, st.keys, req.config as HeConfig, { encryption: 'symmetric' });
      return { stage: 'he-input', ...base, ciphertexts: packChunks(ciphertexts) };
    }
    if (!st.keys) throw new ProtocolError('FORBIDDEN', `${this.hospitalId} holds no secret key for this round`, 'stage');
    const out = await decryptSum(unpackChunks(req.sum), st.keys, req.clients, req.config as HeConfig);
    return { stage: 'he-decrypt', ...base, mean: new Uint8Array(out.mean.buffer, out.mean.byteOffset, out.mean.byteLength), total_weight: out.totalWeight };
  }

  /** This hospital's privacy ledger (opened once from the host's store). */
  privacyLedger(): Promise<PrivacyLedger> {
    this.ledger ??= PrivacyLedger.open(this.hospitalId, this.options.privacyLedger);
    return this.ledger;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}
