import type { EstimateJson } from './statistics.js';
import type { RunData } from './store/run-reader.js';
import { RunStoreError } from '../util/errors.js';

/**
 * A run's results in lm-evaluation-harness's results JSON shape (what `lm_eval --output_path` writes), so tools
 * that read lm-eval output read ours: `results{task: {"metric,filter": value, "metric_stderr,filter": se}}`,
 * `group_subtasks`, `configs`, `versions`, `n-shot`, `higher_is_better`, `n-samples{task: {original, effective}}`,
 * `config`, `date`. Built from results.json and the manifest only.
 *
 * - perplexity: word_perplexity, byte_perplexity and bits_per_byte under the filter "none" (lm-eval's wikitext
 *   metrics). lm-eval itself writes "N/A" for their stderr (its weighted perplexity has no stderr function); we
 *   write our delta-method standard error over rows instead, and "N/A" only where it is undefined (one row).
 * - humaneval: pass@k for each k in results.json under the filter "create_test" (lm-eval's humaneval task),
 *   stderr the standard error over problems.
 * - latency has no lm-eval counterpart and is left out.
 */
export interface LmEvalResults {
  results: Record<string, Record<string, string | number | null>>;
  group_subtasks: Record<string, string[]>;
  configs: Record<string, Record<string, unknown>>;
  versions: Record<string, number>;
  'n-shot': Record<string, number>;
  higher_is_better: Record<string, Record<string, boolean>>;
  'n-samples': Record<string, { original: number; effective: number }>;
  config: Record<string, unknown>;
  git_hash: null;
  date: number;
  /** Where the figures come from (not an lm-eval key; tools that read lm-eval output ignore it). */
  evalpipe: { run_id: string; config_hash: string; tool_version: string; results_completed_at: string };
}

export const EXPORT_FORMATS = ['lm-eval'] as const;

/** The tasks an lm-eval export holds, in this order (the others have no lm-eval counterpart). */
const EXPORTED_TASKS = ['perplexity', 'humaneval'] as const;

function stderr(estimate: EstimateJson | undefined): number | string {
  return estimate?.se ?? 'N/A';
}

/** The lm-eval results JSON of a scored run; refuses a run that has no results.json yet. */
export function lmEvalResults(run: Pick<RunData, 'dir' | 'manifest' | 'results'>): LmEvalResults {
  const { manifest, results } = run;
  if (!results) {
    throw new RunStoreError(`${run.dir} is not scored yet (no results.json)`, {
      hint: 'finish the run first (the same `evalpipe run` command resumes it); `evalpipe status DIR` shows what is left',
    });
  }
  const config = manifest.config;
  const out: LmEvalResults = {
    results: {},
    group_subtasks: {},
    configs: {},
    versions: {},
    'n-shot': {},
    higher_is_better: {},
    'n-samples': {},
    config: {
      model: 'evalpipe',
      model_args: `pretrained=${config.model},quant=${config.quant},attn=${config.attn}${config.computeDtype ? `,compute_dtype=${config.computeDtype}` : ''}`,
      model_name: config.model,
      model_sha: manifest.model?.revision ?? config.revision ?? null,
      model_num_parameters: manifest.model?.n_params ?? null,
      model_dtype: manifest.model?.dtype ?? null,
      batch_size: String(manifest.batching?.perplexity_rows_per_request ?? ''),
      device: manifest.model?.device ?? config.device,
      limit: config.humaneval?.limit ?? null,
      random_seed: config.seed,
      deterministic: manifest.model?.deterministic ?? config.deterministic ?? null,
    },
    git_hash: null,
    date: Math.floor(Date.parse(results.completed_at) / 1000),
    evalpipe: { run_id: results.run_id, config_hash: results.config_hash, tool_version: manifest.tool.version, results_completed_at: results.completed_at },
  };
  const version = (task: string): number => results.versions?.[task] ?? 1;

  for (const task of EXPORTED_TASKS) {
    if (task === 'perplexity' && results.perplexity) {
      const section = results.perplexity;
      const metrics: Record<string, string | number | null> = { alias: 'perplexity' };
      const put = (name: string, value: number | null | undefined, estimate: EstimateJson | undefined): void => {
        if (value === null || value === undefined || !Number.isFinite(value)) return;
        metrics[`${name},none`] = value;
        metrics[`${name}_stderr,none`] = stderr(estimate);
      };
      put('word_perplexity', section.word_perplexity, section.estimates.word_perplexity);
      put('byte_perplexity', section.byte_perplexity, section.estimates.byte_perplexity);
      put('bits_per_byte', section.bits_per_byte, section.estimates.bits_per_byte);
      const pplConfig = config.perplexity;
      out.results.perplexity = metrics;
      out.group_subtasks.perplexity = [];
      out.configs.perplexity = {
        task: 'perplexity',
        dataset_path: section.dataset,
        dataset_name: pplConfig?.config ?? null,
        test_split: pplConfig?.split ?? null,
        doc_to_target: section.text_field,
        output_type: 'loglikelihood_rolling',
        num_fewshot: 0,
        metric_list: ['word_perplexity', 'byte_perplexity', 'bits_per_byte'].map((metric) => ({ metric })),
        metadata: {
          version: version('perplexity'),
          windowing: section.windowing ?? 'evalpipe',
          max_length: pplConfig?.maxLength ?? engineDefaultMaxLength(run) ?? null,
          rows: section.rows,
          dataset_sha256: section.dataset_sha256,
        },
      };
      out.versions.perplexity = version('perplexity');
      out['n-shot'].perplexity = 0;
      out.higher_is_better.perplexity = { word_perplexity: false, byte_perplexity: false, bits_per_byte: false };
      out['n-samples'].perplexity = { original: section.rows, effective: section.rows };
    }
    if (task === 'humaneval' && results.humaneval) {
      const section = results.humaneval;
      const metrics: Record<string, string | number | null> = { alias: 'humaneval' };
      const higher: Record<string, boolean> = {};
      for (const [name, value] of Object.entries(section.pass_at_k)) {
        metrics[`${name},create_test`] = value;
        metrics[`${name}_stderr,create_test`] = stderr(section.estimates[name]);
        higher[name] = true;
      }
      const he = config.humaneval;
      out.results.humaneval = metrics;
      out.group_subtasks.humaneval = [];
      out.configs.humaneval = {
        task: 'humaneval',
        dataset_path: manifest.datasets.humaneval?.id ?? he?.source ?? 'openai/openai_humaneval',
        output_type: 'generate_until',
        num_fewshot: 0,
        repeats: section.n_samples_per_problem,
        generation_kwargs: {
          until: he?.stop ?? manifest.stop_sequences,
          max_gen_toks: he?.maxNewTokens ?? null,
          do_sample: (he?.temperature ?? 0) > 0,
          temperature: he?.temperature ?? 0,
          top_p: he?.topP ?? null,
        },
        metric_list: Object.keys(section.pass_at_k).map((metric) => ({ metric })),
        filter_list: [{ name: 'create_test' }],
        metadata: { version: version('humaneval'), verdicts: he?.verdicts ?? 'default' },
      };
      out.versions.humaneval = version('humaneval');
      out['n-shot'].humaneval = 0;
      out.higher_is_better.humaneval = higher;
      out['n-samples'].humaneval = { original: section.n_problems, effective: section.n_problems };
    }
  }
  return out;
}

/** The engine's default max_length when --max-length was not given: min(the model's positions, 4096). */
function engineDefaultMaxLength(run: Pick<RunData, 'manifest'>): number | undefined {
  const modelMax = run.manifest.model?.max_position_embeddings;
  return modelMax ? Math.min(modelMax, 4096) : undefined;
}
