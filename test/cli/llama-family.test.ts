import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { enginePythonCommand } from '../../src/backends/engine/python-command.js';
import { HUMANEVAL_FILE, runCli } from '../support/spawn-cli.js';

const execFileAsync = promisify(execFile);

/** A local Qwen2-family checkpoint directory (config.json, safetensors, tokenizer files), as a user has one: the
 * tiny-qwen2 preset written out by the engine's own writer, without the marker that names it a preset. */
async function writeQwen2Directory(dir: string): Promise<void> {
  const python = enginePythonCommand(process.env, []);
  const script = 'import sys\nfrom evalpipe_engine.presets import write_preset_dir\nwrite_preset_dir(sys.argv[1], name="tiny-qwen2")';
  await execFileAsync(python.executable, ['-c', script, dir], { env: python.env, timeout: 300_000 });
  await rm(join(dir, 'evalpipe_preset.json'));
}

describe('a local Llama-family directory on the native engine (real CLI, real engine process)', () => {
  it('evalpipe run --model DIR scores and generates with NativeLlama, and the manifest says so', async () => {
    const root = await mkdtemp(join(tmpdir(), 'evalpipe-qwen2-'));
    const model = join(root, 'qwen2-checkpoint');
    await writeQwen2Directory(model);
    const runDir = join(root, 'run');
    const args = ['run', '--model', model, '--dataset', 'builtin:smoke', '--rows', '6', '--tasks', 'perplexity,humaneval'];
    const result = await runCli([
      ...args,
      '--humaneval',
      HUMANEVAL_FILE,
      '--limit',
      '2',
      '--max-new-tokens',
      '8',
      '--stages',
      'perplexity,generate',
      '--run-dir',
      runDir,
    ]);
    expect(result.stderr).not.toMatch(/internal error|HF transformers/);
    expect(result.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(runDir, 'manifest.json'), 'utf8'));
    expect(manifest.model).toMatchObject({ source: 'local', architecture: 'Qwen2ForCausalLM', backend: 'NativeLlama' });
    // Qwen2's tokenizer adds no BOS: perplexity scores from the first token, and the manifest states the rule.
    expect(manifest.model.special_tokens).toMatchObject({ add_bos_token: false, score_add_bos: false });
    expect(manifest.model.special_tokens.rule).toMatch(/add_bos_token/);
    const generated = (await readFile(join(runDir, 'records', 'generate.jsonl'), 'utf8')).trim().split('\n');
    expect(generated).toHaveLength(2);
    const perplexity = (await readFile(join(runDir, 'records', 'perplexity.jsonl'), 'utf8')).trim().split('\n');
    expect(perplexity).toHaveLength(6);
  });

  it('a config field the native engine does not implement is refused with the field named, never run wrong', async () => {
    const root = await mkdtemp(join(tmpdir(), 'evalpipe-qwen2-bad-'));
    const model = join(root, 'qwen2-checkpoint');
    await writeQwen2Directory(model);
    const configPath = join(model, 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    await writeFile(configPath, JSON.stringify({ ...config, rope_scaling: { rope_type: 'made-up', factor: 2 } }));
    const runDir = join(root, 'run');
    const result = await runCli(['run', '--model', model, '--dataset', 'builtin:smoke', '--rows', '2', '--run-dir', runDir]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/rope_scaling\.rope_type 'made-up'.*not supported by the native engine/);
    expect(result.stderr).not.toMatch(/internal error|Traceback|    at /);
  });

  it('--model-impl native refuses an architecture it does not run, naming it; --model-impl hf runs a Qwen2 directory on HF transformers', async () => {
    const root = await mkdtemp(join(tmpdir(), 'evalpipe-model-impl-'));
    const model = join(root, 'qwen2-checkpoint');
    await writeQwen2Directory(model);
    const hf = await runCli([
      'run',
      '--model',
      model,
      '--model-impl',
      'hf',
      '--tasks',
      'perplexity',
      '--dataset',
      'builtin:smoke',
      '--rows',
      '2',
      '--run-dir',
      join(root, 'hf'),
    ]);
    expect(hf.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(root, 'hf', 'manifest.json'), 'utf8'));
    expect(manifest.model).toMatchObject({ architecture: 'Qwen2ForCausalLM', backend: 'HfBackend' });
    expect(manifest.config.modelImpl).toBe('hf');

    const other = join(root, 'neox-checkpoint');
    await writeQwen2Directory(other);
    const configPath = join(other, 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    await writeFile(configPath, JSON.stringify({ ...config, architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox' }));
    const refused = await runCli([
      'run',
      '--model',
      other,
      '--model-impl',
      'native',
      '--dataset',
      'builtin:smoke',
      '--rows',
      '2',
      '--run-dir',
      join(root, 'neox'),
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/the native engine implements .*not GPTNeoXForCausalLM.*--model-impl auto or hf/);
    expect(refused.stderr).not.toMatch(/internal error|Traceback|    at /);
  });
});
