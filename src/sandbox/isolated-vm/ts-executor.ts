import { DEFAULT_JS_LIMITS, runJavaScript, type JsExecution, type JsLimits } from './js-executor.js';
import { compileTypeScript } from './ts-compiler.js';

/**
 * One TypeScript candidate as MultiPL-E evaluates it: `tsc --target esnext` first (any diagnostic fails it as
 * `TypeScriptError` with tsc's messages, nothing run), then the emitted JavaScript as Node would run it, here in
 * a fresh isolate context (runJavaScript).
 */
export async function runTypeScript(source: string, limits: JsLimits = DEFAULT_JS_LIMITS): Promise<JsExecution> {
  const started = performance.now();
  let compiled: ReturnType<typeof compileTypeScript>;
  try {
    compiled = compileTypeScript(source);
  } catch (error) {
    return unrun('sandbox_error', error instanceof Error ? error.name : null, `the TypeScript compiler failed: ${(error as Error).message}`, started);
  }
  if (compiled.diagnostics.length > 0) return unrun('failed', 'TypeScriptError', compiled.diagnostics.join('\n'), started);
  const executed = await runJavaScript(compiled.javascript, limits);
  return { ...executed, durationMs: Math.round((performance.now() - started) * 1000) / 1000 };
}

function unrun(status: JsExecution['status'], exceptionType: string | null, message: string, started: number): JsExecution {
  return {
    status,
    passed: false,
    exceptionType,
    message: message.slice(0, 2000),
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    stdout: '',
    stderr: '',
    stdoutBytes: 0,
    stderrBytes: 0,
  };
}
