import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fidelityPrograms, type FidelityProgram } from '../../../test/support/multipl-e-fidelity-programs.js';
import { referenceJavaScript, referenceTypeScript, type ReferenceLimits, type ReferenceVerdict } from '../../../test/support/multipl-e-reference.js';
import { runJavaScript, type JsExecution, type JsLimits } from './js-executor.js';
import { multiplEStatusOf } from './multipl-e-status.js';
import { runTypeScript } from './ts-executor.js';

// Generous limits on both sides: nothing but a truly infinite loop comes near 8 s, even on 2 busy cores (a memory
// bomb allocates 8 MB a step, so node reaches its heap limit in well under a second when idle), and a compile
// never near 3 minutes. Two processes or isolates at a time, one per core.
const LIMITS: JsLimits = { timeoutMs: 8000, memoryMb: 256, maxOutputBytes: 4096 };
const REFERENCE: ReferenceLimits = { nodeTimeoutMs: 8000, tscTimeoutMs: 180_000, heapMb: 256 };
const CONCURRENCY = 2;

describe('fidelity: our isolate verdicts equal node (and tsc then node) on the same files, as MultiPL-E evaluates them', () => {
  const programs = fidelityPrograms();
  let dir: string;
  const references = new Map<string, ReferenceVerdict>();
  const ours = new Map<string, JsExecution>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evalpipe-fidelity-'));
    const limit = pLimit(CONCURRENCY);
    // the reference first, then ours: the two never compete for the cores
    await Promise.all(
      programs.map((program) =>
        limit(async () => {
          const file = join(dir, `${program.id}.${program.language}`);
          await writeFile(file, program.source);
          references.set(program.id, program.language === 'ts' ? await referenceTypeScript(file, REFERENCE) : await referenceJavaScript(file, REFERENCE));
        }),
      ),
    );
    await Promise.all(
      programs.map((program) =>
        limit(async () => {
          ours.set(program.id, program.language === 'ts' ? await runTypeScript(program.source, LIMITS) : await runJavaScript(program.source, LIMITS));
        }),
      ),
    );
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the set: at least 200 programs in both languages, every kind present', () => {
    expect(programs.length).toBeGreaterThanOrEqual(200);
    expect(programs.filter((program) => program.language === 'ts').length).toBeGreaterThanOrEqual(30);
    const categories = new Set(programs.map((program) => program.category));
    for (const kind of [
      'canonical',
      'wrong-answer',
      'syntax-error',
      'ts-type-error-return',
      'infinite-loop',
      'memory-bomb-heap',
      'throws-error',
      'deep-recursion-infinite',
      'prints-no-assert-wrong',
      'assert-deepEqual',
    ]) {
      expect(categories).toContain(kind);
    }
  });

  it('the reference sees each kind as it should (the generator makes what it says)', () => {
    const statusesOf = (category: string, language?: FidelityProgram['language']) =>
      new Set(
        programs
          .filter((program) => program.category === category && (!language || program.language === language))
          .map((program) => references.get(program.id)!.status),
      );
    expect(statusesOf('canonical')).toEqual(new Set(['OK']));
    expect(statusesOf('prints-no-assert-wrong')).toEqual(new Set(['OK']));
    expect(statusesOf('wrong-answer')).toEqual(new Set(['AssertionError']));
    expect(statusesOf('infinite-loop')).toEqual(new Set(['Timeout']));
    expect(statusesOf('syntax-error')).toEqual(new Set(['SyntaxError']));
    expect(statusesOf('memory-bomb-heap', 'js')).toEqual(new Set(['Exception']));
    expect(statusesOf('ts-type-error-return')).toEqual(new Set(['SyntaxError']));
    expect(statusesOf('loose-type', 'js')).toEqual(new Set(['OK']));
  });

  it('every program: the same MultiPL-E status (so the same pass/fail) from our isolate as from node / tsc + node', () => {
    const mismatches = programs
      .map((program) => {
        const reference = references.get(program.id)!;
        const our = ours.get(program.id)!;
        return {
          id: program.id,
          reference: reference.status,
          ours: multiplEStatusOf(our),
          why: `${our.status} ${our.exceptionType ?? ''} ${our.message?.slice(0, 120) ?? ''} | node: ${reference.stderr.slice(0, 200)}`,
        };
      })
      .filter((each) => each.reference !== each.ours);
    expect(mismatches).toEqual([]);
    const passed = programs.filter((program) => ours.get(program.id)!.passed).length;
    expect(passed).toBe(programs.filter((program) => references.get(program.id)!.status === 'OK').length);
  });
});
