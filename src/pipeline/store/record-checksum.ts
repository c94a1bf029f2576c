import { canonicalJson, sha256Hex } from '../../util/canonical-json.js';
import { RunStoreError } from '../../util/errors.js';

/** The field every record written since checksums exist carries: 16 hex digits of sha256 over its content. */
export const CHECKSUM_FIELD = 'sum';

/** sha256 of the record's canonical JSON without its checksum field, first 16 hex digits. */
export function recordChecksum(record: Record<string, unknown>): string {
  const { [CHECKSUM_FIELD]: _sum, ...content } = record;
  return sha256Hex(canonicalJson(content)).slice(0, 16);
}

export function withChecksum<T extends Record<string, unknown>>(record: T): T & { sum: string } {
  return { ...record, [CHECKSUM_FIELD]: recordChecksum(record) };
}

/**
 * Checks the records of one file as they are read, in order. A record whose checksum does not match its content
 * was edited or damaged; in a file whose records carry checksums, one without is too (older files, written before
 * checksums, have none at all and are read as before). Either is refused, naming the file and line.
 */
export class RecordChecker {
  private sawChecksum = false;
  private sawLegacy = false;

  constructor(private readonly path: string) {}

  check(record: Record<string, unknown>, line: number): void {
    const sum = record[CHECKSUM_FIELD];
    if (sum === undefined) {
      if (this.sawChecksum) throw this.refuse(line, 'has no checksum, unlike the records before it');
      this.sawLegacy = true;
      return;
    }
    if (this.sawLegacy) throw this.refuse(line, 'has a checksum, unlike the records before it');
    this.sawChecksum = true;
    if (sum !== recordChecksum(record)) throw this.refuse(line, 'does not match its checksum: it was edited or damaged');
  }

  private refuse(line: number, what: string): RunStoreError {
    return new RunStoreError(`${this.path} line ${line} ${what}`, {
      hint: 'restore the file from a copy, or start the run over with --fresh; a record edited by hand is never scored',
    });
  }
}
