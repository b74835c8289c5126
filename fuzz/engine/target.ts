/**
 * What a fuzz target is: one boundary that takes bytes from the network, and its contract.
 * `run` feeds it one input and throws when the contract is broken (an error of a kind the boundary
 * does not document, a wrong answer); the engine records every throw, and every uncaught exception
 * or unhandled rejection while the input runs, as a crash of that input.
 */
export interface FuzzTarget {
  /** Short name: the file under fuzz/targets/, the folder of its seeds, corpus and crashes. */
  name: string;
  /** What is fed and what is asserted, one line. */
  description: string;
  /** Fragments of script URLs whose block coverage steers the search (e.g. '/src/stream/'). */
  cover: string[];
  /** Inputs are lines of JSON: also apply JSON-aware mutations. */
  json?: boolean;
  /** Longest input tried (default 4096 bytes). */
  maxLen?: number;
  /** Words worth inserting: op names, keys, magic values. */
  dictionary?: string[];
  /** Built-in starting inputs (fuzz/seeds/<name>/ adds files). */
  seeds(): Buffer[];
  /** Once before the first input (start a server, …). */
  setup?(): Promise<void>;
  /** One input; throws when the contract does not hold. */
  run(data: Buffer): void | Promise<void>;
  /** Once after the last input. */
  teardown?(): Promise<void>;
  /** Time one input may take before it counts as a hang (async targets; default 10 s). */
  timeoutMs?: number;
}

/**
 * A broken contract: `kind` says which clause (crashes of one kind count as one), `detail` the
 * case at hand (what was sent, what came back).
 */
export class ContractViolation extends Error {
  override name = 'ContractViolation';
  constructor(
    readonly kind: string,
    detail?: string,
  ) {
    super(detail === undefined ? kind : `${kind}: ${detail}`);
  }
}
