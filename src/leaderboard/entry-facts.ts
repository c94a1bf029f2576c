import type { RunData } from '../pipeline/store/run-reader.js';

/** Whether an entry's run was finished, and what is missing when not. */
export interface EntryCompleteness {
  /** `partial`: added with --allow-partial although the run is not scored, or lacks a task's figures. */
  status: 'complete' | 'partial';
  /** What is missing: `not scored` (no results.json, or one for another config), or the tasks without figures. */
  missing: string[];
}

/** The settings a figure depends on, stated beside it (as the bigcode leaderboard does). */
export interface EntrySettings {
  humaneval: {
    n: number;
    temperature: number;
    top_p: number;
    max_new_tokens: number;
    stop: string[];
    strip_prompt: boolean;
    verdicts: 'default' | 'isolated';
    timeout_s: number;
    memory_mb: number;
  } | null;
  perplexity: {
    dataset: string;
    revision: string | null;
    text_field: string | null;
    rows_requested: number;
    max_length: number | null;
    stride: number | null;
    add_bos: boolean;
  } | null;
}

/** How much of each benchmark the figures cover: a `--limit` or short data set makes them a subset. */
export interface EntrySubset {
  is_subset: boolean;
  humaneval: { problems: number; of: number | null; limit: number | null } | null;
  perplexity: { rows: number; requested: number } | null;
}

export interface EntryFacts extends EntryCompleteness {
  settings: EntrySettings;
  subset: EntrySubset;
}

/** What a run directory says about an entry beyond its figures: completeness, settings, subset. */
export function entryFacts(run: Pick<RunData, 'manifest' | 'results'>): EntryFacts {
  const { manifest, results } = run;
  const { config } = manifest;
  const scored = results !== undefined && results.config_hash === manifest.config_hash;
  const sections = (results ?? {}) as Record<string, unknown>;
  const missing = scored ? config.tasks.filter((task) => sections[task] === undefined) : ['not scored'];
  const has = (task: string): boolean => config.tasks.includes(task as (typeof config.tasks)[number]);
  const humanevalDataset = manifest.datasets.humaneval;
  const perplexityDataset = manifest.datasets.perplexity as (typeof manifest.datasets)[string] & { textField?: string };
  const humaneval = has('humaneval') ? config.humaneval : undefined;
  const perplexity = has('perplexity') ? config.perplexity : undefined;
  const problems = scored ? (results.humaneval?.n_problems ?? null) : null;
  const rows = scored ? (results.perplexity?.rows ?? null) : null;
  const subset: EntrySubset = {
    is_subset: false,
    humaneval: humaneval && problems !== null ? { problems, of: humanevalDataset?.rowCount ?? null, limit: humaneval.limit ?? null } : null,
    perplexity: perplexity && rows !== null ? { rows, requested: perplexity.rows } : null,
  };
  subset.is_subset =
    (subset.humaneval !== null && subset.humaneval.of !== null && subset.humaneval.problems < subset.humaneval.of) ||
    (subset.perplexity !== null && subset.perplexity.rows < subset.perplexity.requested);
  return {
    status: missing.length === 0 ? 'complete' : 'partial',
    missing,
    settings: {
      humaneval: humaneval
        ? {
            n: humaneval.n,
            temperature: humaneval.temperature,
            top_p: humaneval.topP,
            max_new_tokens: humaneval.maxNewTokens,
            stop: humaneval.stop,
            strip_prompt: humaneval.stripPrompt,
            verdicts: humaneval.verdicts ?? 'default',
            timeout_s: humaneval.timeoutS,
            memory_mb: humaneval.memoryMb,
          }
        : null,
      perplexity: perplexity
        ? {
            dataset: perplexity.dataset,
            revision: perplexityDataset?.revision ?? perplexity.revision ?? null,
            text_field: perplexityDataset?.textField ?? perplexity.textField ?? null,
            rows_requested: perplexity.rows,
            max_length: perplexity.maxLength ?? null,
            stride: perplexity.stride ?? null,
            add_bos: perplexity.addBos,
          }
        : null,
    },
    subset,
  };
}
