/**
 * A hospital's privacy ledger: the Rényi DP it has spent (per order, summed over every DP-SGD step
 * it ever trained, all runs together — RDP composes by addition, Mironov 2017, Prop. 1), and the
 * steps that spent it. Persisted by the host (IndexedDB in the portal, a JSON file for the
 * headless client) so a reload or restart cannot reset a hospital's budget. ε is derived for the
 * δ asked for; the ledger stores only δ-free RDP.
 */
import { computeRdp, DP_SGD_ORDERS, getPrivacySpent } from '../privacy/rdp';

export interface LedgerEntry {
  run_id: string;
  round: number;
  sample_rate: number;
  noise_multiplier: number;
  steps: number;
  /** ISO time the steps were trained. */
  at: string;
}

export interface PrivacyLedgerState {
  version: 1;
  hospital_id: string;
  orders: number[];
  rdp: number[];
  entries: LedgerEntry[];
}

export interface PrivacyLedgerStore {
  load(): Promise<PrivacyLedgerState | undefined>;
  save(state: PrivacyLedgerState): Promise<void>;
}

/** Keeps the ledger in memory only (tests, simulations that want a fresh budget per run). */
export function memoryLedgerStore(): PrivacyLedgerStore {
  let state: PrivacyLedgerState | undefined;
  return {
    load: async () => (state ? structuredClone(state) : undefined),
    save: async (s) => {
      state = structuredClone(s);
    },
  };
}

/** Thrown when training would take a hospital past its target ε; the session declines with this message. */
export class PrivacyBudgetError extends Error {
  static readonly PREFIX = 'PRIVACY_BUDGET';
  constructor(
    readonly spent: number,
    readonly after: number,
    readonly target: number,
  ) {
    super(`${PrivacyBudgetError.PREFIX}: this round would take ε from ${spent.toFixed(3)} to ${after.toFixed(3)}, past the target ${target}`);
    this.name = 'PrivacyBudgetError';
  }
}

/**
 * A ledger kept before DP-SGD's noise became the discrete Gaussian holds RDP at every order of
 * DEFAULT_ORDERS; only the integer ones bound the discrete mechanism, so the ledger keeps those
 * (its RDP there stays valid for the steps already spent: ε can only grow). Any other order set is
 * refused rather than reset.
 */
function narrowToDpSgdOrders(state: PrivacyLedgerState): PrivacyLedgerState {
  const at = DP_SGD_ORDERS.map((a) => state.orders.indexOf(a));
  if (at.some((i) => i < 0)) throw new Error(`privacy ledger of ${state.hospital_id}: stored orders lack some of DP-SGD's integer orders; refusing to reset a privacy budget silently`);
  return { ...state, orders: [...DP_SGD_ORDERS], rdp: at.map((i) => state.rdp[i] as number) };
}

export class PrivacyLedger {
  private constructor(
    private state: PrivacyLedgerState,
    private readonly store: PrivacyLedgerStore,
  ) {}

  static async open(hospitalId: string, store: PrivacyLedgerStore = memoryLedgerStore()): Promise<PrivacyLedger> {
    const loaded = await store.load();
    if (loaded) {
      if (loaded.version !== 1 || loaded.hospital_id !== hospitalId || loaded.orders.length !== loaded.rdp.length) {
        throw new Error(`privacy ledger: stored state belongs to ${loaded.hospital_id ?? '?'} or is malformed; refusing to reset a privacy budget silently`);
      }
      return new PrivacyLedger(narrowToDpSgdOrders(loaded), store);
    }
    return new PrivacyLedger({ version: 1, hospital_id: hospitalId, orders: [...DP_SGD_ORDERS], rdp: DP_SGD_ORDERS.map(() => 0), entries: [] }, store);
  }

  get entries(): readonly LedgerEntry[] {
    return this.state.entries;
  }

  /** ε spent so far at δ (0 before any DP training). */
  spent(delta: number): number {
    if (this.state.entries.length === 0) return 0;
    return getPrivacySpent({ orders: this.state.orders, rdp: this.state.rdp, delta }).epsilon;
  }

  /** ε after `steps` more steps at (q, σ), without recording them. */
  preview(sampleRate: number, noiseMultiplier: number, steps: number, delta: number): number {
    const add = computeRdp(sampleRate, noiseMultiplier, steps, this.state.orders);
    return getPrivacySpent({ orders: this.state.orders, rdp: this.state.rdp.map((r, i) => r + (add[i] as number)), delta }).epsilon;
  }

  /** Records trained steps and persists the ledger before the result leaves the hospital. */
  async charge(entry: Omit<LedgerEntry, 'at'>): Promise<void> {
    const add = computeRdp(entry.sample_rate, entry.noise_multiplier, entry.steps, this.state.orders);
    const next: PrivacyLedgerState = {
      ...this.state,
      rdp: this.state.rdp.map((r, i) => r + (add[i] as number)),
      entries: [...this.state.entries, { ...entry, at: new Date().toISOString() }],
    };
    await this.store.save(next);
    this.state = next;
  }
}
