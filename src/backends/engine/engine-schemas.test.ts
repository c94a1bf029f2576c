import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineRequestInvalidError } from './engine-errors.js';
import { EngineProcess } from './engine-process.js';
import { schemaErrors, schemaPart, schemaViolation } from './engine-schemas.js';
import { ATTENTION_BACKENDS, ENGINE_ERROR_TYPES, ENGINE_OPS, QUANT_MODES, type EngineOp } from './protocol.js';
import { packageRoot } from '../../util/package-root.js';

/**
 * ajv on the engine op schemas (schemas/engine/<op>.json) with the shared fixtures of schemas/engine/examples/:
 * the same files cuda/tests/test_request_schemas.py checks with the engine's own validator, so a request passes
 * or fails on both sides alike, at the same field, in the same words.
 */
interface Fixture {
  op: EngineOp;
  valid: Record<string, unknown>[];
  invalid: { params: Record<string, unknown>; pointer: string; keyword: string; message: string }[];
}

const examples = join(packageRoot(), 'schemas', 'engine', 'examples');
const fixtures: Fixture[] = readdirSync(examples)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => JSON.parse(readFileSync(join(examples, name), 'utf8')) as Fixture);

describe('engine op schemas (ajv) on the shared fixtures', () => {
  it('has a fixture for every op', () => {
    expect(fixtures.map((fixture) => fixture.op).sort()).toEqual([...ENGINE_OPS].sort());
  });

  for (const fixture of fixtures) {
    it(`${fixture.op}: the valid params pass`, () => {
      for (const params of fixture.valid) expect(schemaErrors(fixture.op, 'params', params), JSON.stringify(params)).toEqual([]);
    });

    it(`${fixture.op}: each invalid one fails at its field, in its words`, () => {
      for (const { params, pointer, keyword, message } of fixture.invalid) {
        const errors = schemaErrors(fixture.op, 'params', params);
        expect(errors, JSON.stringify(params)).toContainEqual({ pointer, keyword });
        expect(schemaViolation(fixture.op, 'params', params)).toMatchObject({ pointer, keyword, message });
      }
    });
  }

  it("names the same choices as this side's types", () => {
    const load = schemaPart('load', 'params')!.properties as Record<string, { enum: unknown[] }>;
    expect(load.quant!.enum.filter((option) => option !== null)).toEqual([...QUANT_MODES]);
    expect(load.attn!.enum.filter((option) => option !== null)).toEqual([...ATTENTION_BACKENDS]);
    const error = schemaPart('protocol', 'error')!.properties as Record<string, { enum: unknown[] }>;
    expect(error.type!.enum).toEqual([...ENGINE_ERROR_TYPES]);
    const request = schemaPart('protocol', 'request')!.properties as Record<string, { enum: unknown[] }>;
    expect(request.op!.enum).toEqual([...ENGINE_OPS]);
  });

  it('checks results and events too', () => {
    expect(schemaViolation('generate', 'result', { count: 3 })).toBeUndefined();
    expect(schemaViolation('generate', 'result', { count: -1 })?.message).toBe('count = -1 is out of range: count must be an integer >= 0');
    const sample = { key: 'k', sample_index: 0, completion: 'x', finish_reason: 'stop', stop_sequence: '\ndef', n_new_tokens: 2, n_prompt_tokens: 5 };
    expect(schemaViolation('generate', 'partial', sample)).toBeUndefined();
    expect(schemaViolation('generate', 'partial', { ...sample, finish_reason: 'tired' })?.message).toBe('unknown finish_reason "tired"');
    expect(schemaViolation('bench', 'progress', { done: 4, total: 16, unit: 'minibatches' })).toBeUndefined();
  });
});

describe('EngineProcess refuses a bad request before sending it', () => {
  // A process that never answers: a refused request must not reach it (nothing would ever resolve it).
  const silent = () =>
    EngineProcess.start({
      command: {
        executable: process.execPath,
        args: ['-e', 'console.log(JSON.stringify({event:"ready",data:{protocol:1,engine_version:"test",pid:process.pid}})); setInterval(() => {}, 1000)'],
        env: process.env,
      },
      readyTimeoutMs: 30_000,
    });

  it('with one typed line naming the op, the field and what to do', async () => {
    const engine = await silent();
    try {
      const refused = await engine
        .generate({
          requests: [{ key: 'HumanEval/0', prompt: 'def f():', samples: [1, 0] }],
          n: 2,
          temperature: 0.8,
          top_p: 0.95,
          max_new_tokens: 0,
          seed: 0,
          stop: [],
        })
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(EngineRequestInvalidError);
      const error = refused as EngineRequestInvalidError;
      expect(error.type).toBe('bad_request');
      expect(error.field).toBe('max_new_tokens');
      expect(error.toUserLine()).toBe(
        'engine generate: max_new_tokens = 0 is out of range: max_new_tokens must be an integer >= 1 (request not sent) — the generate request must match schemas/engine/generate.json',
      );
      expect(error.toUserLine()).not.toMatch(/\n/);
      await expect(engine.load({ model: 'x', quant: 'int3' as 'int8' })).rejects.toThrow(/^engine load: unknown quant "int3" \(request not sent\)$/);
      await expect(engine.load({ model: 'x', quant: 'int3' as 'int8' })).rejects.toMatchObject({
        hint: 'use one of fp32, fp16, bf16, int8, nf4, fp8 (the load request must match schemas/engine/load.json)',
      });
      await expect(engine.request('teleport')).rejects.toMatchObject({
        type: 'bad_request',
        field: 'op',
        message: 'engine teleport: unknown op "teleport" (request not sent)',
      });
      // undefined fields are dropped on the wire, so they are checked as absent, as the engine will read them
      await expect(engine.score({ rows: [{ index: 1, text: 'x' }], max_length: undefined, stride: 0 })).rejects.toMatchObject({ field: 'stride' });
      expect(engine.alive).toBe(true);
    } finally {
      engine.kill();
    }
  });
});
