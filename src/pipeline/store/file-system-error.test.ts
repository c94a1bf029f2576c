import { describe, expect, it } from 'vitest';
import { RunStoreError } from '../../util/errors.js';
import { runDirectoryError } from './file-system-error.js';

function errno(code: string, path?: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed`), { code, ...(path === undefined ? {} : { path }) });
}

describe('runDirectoryError', () => {
  it("names the run directory for errors on its own path, a file in the way above it, or an open handle's write", () => {
    for (const error of [errno('ENOTDIR', '/r/a-file/run/records'), errno('EEXIST', '/r/a-file'), errno('ENOSPC')]) {
      const mended = runDirectoryError('/r/a-file/run', error);
      expect(mended).toBeInstanceOf(RunStoreError);
      expect((mended as RunStoreError).message).toMatch(/^cannot use \/r\/a-file\/run as the run directory: /);
    }
  });

  it("leaves another path's error (a data set under a file) and unknown codes alone", () => {
    const dataset = errno('ENOTDIR', '/data/texts.jsonl/part');
    expect(runDirectoryError('/r/run', dataset)).toBe(dataset);
    const missing = errno('ENOENT', '/r/run/manifest.json');
    expect(runDirectoryError('/r/run', missing)).toBe(missing);
  });
});
