import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as TypeScript from 'typescript-api';

/**
 * The TypeScript 5.x compiler API (the `typescript-api` dependency, an npm alias of typescript@5.9): the repo's
 * devDependency `typescript` is 7.x, the native port, which has no JavaScript compiler API to call in process.
 * Loaded on first use, so JavaScript-only runs never pay for it.
 */
let loaded: typeof TypeScript | undefined;
function typescript(): typeof TypeScript {
  loaded ??= createRequire(import.meta.url)('typescript-api') as typeof TypeScript;
  return loaded;
}

/** What one TypeScript candidate compiled to: its JavaScript, and tsc's diagnostics (any of them fails it). */
export interface TsCompilation {
  javascript: string;
  diagnostics: string[];
}

const FILE = '/candidate.ts';
const OUT = '/candidate.js';

/**
 * The options of MultiPL-E's TypeScript evaluation, `tsc --target esnext FILE.ts` with no tsconfig: tsc's defaults
 * otherwise (not strict; the default library for ESNext, lib.esnext.full.d.ts with the DOM), and `types: []`
 * because no @types package is visible to the file there (the tests' own `declare var require: any` would clash
 * with @types/node's `require`).
 */
function compilerOptions(ts: typeof TypeScript): TypeScript.CompilerOptions {
  return { target: ts.ScriptTarget.ESNext, types: [], noEmitOnError: false };
}

/** Library files parsed once per process and shared by every candidate's program (they never change). */
const libraryFiles = new Map<string, TypeScript.SourceFile | undefined>();

/**
 * Type-check and compile one program as `tsc --target esnext` does: every syntactic, semantic, option and global
 * diagnostic is kept (tsc exits non-zero on any, and MultiPL-E then fails the candidate without running it), and
 * the emitted JavaScript is what tsc writes next to the file.
 */
export function compileTypeScript(source: string): TsCompilation {
  const ts = typescript();
  const options = compilerOptions(ts);
  const libDirectory = dirname(ts.getDefaultLibFilePath(options));
  const defaultLib = join(libDirectory, ts.getDefaultLibFileName(options));
  let javascript = '';
  const host: TypeScript.CompilerHost = {
    getSourceFile(fileName, languageVersion) {
      if (fileName === FILE) return ts.createSourceFile(fileName, source, languageVersion, true, ts.ScriptKind.TS);
      if (!libraryFiles.has(fileName)) {
        let text: string | undefined;
        try {
          text = readFileSync(fileName, 'utf8');
        } catch {
          text = undefined;
        }
        libraryFiles.set(fileName, text === undefined ? undefined : ts.createSourceFile(fileName, text, languageVersion, false));
      }
      return libraryFiles.get(fileName);
    },
    getDefaultLibFileName: () => defaultLib,
    getDefaultLibLocation: () => libDirectory,
    writeFile(fileName, text) {
      if (fileName === OUT) javascript = text;
    },
    getCurrentDirectory: () => '/',
    getDirectories: () => [],
    fileExists: (fileName) => fileName === FILE || (fileName.startsWith(libDirectory) && ts.sys.fileExists(fileName)),
    readFile: (fileName) => (fileName === FILE ? source : fileName.startsWith(libDirectory) ? ts.sys.readFile(fileName) : undefined),
    getCanonicalFileName: (fileName) => fileName,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => '\n',
  };
  const program = ts.createProgram({ rootNames: [FILE], options, host });
  const all = [...program.getConfigFileParsingDiagnostics(), ...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  // The candidate's own file: the library files are the same for every candidate and hold no errors, so
  // checking them (as tsc does without --skipDefaultLibCheck) would cost seconds for nothing
  const file = program.getSourceFile(FILE);
  const syntactic = program.getSyntacticDiagnostics(file);
  all.push(...syntactic);
  if (syntactic.length === 0) all.push(...program.getSemanticDiagnostics(file));
  // Only the candidate's file: emit() without one asks the checker for an emit resolver over every file, which
  // type-checks all the library files again (0.5-1 s a candidate; with the file, 20-50 ms)
  const emitted = program.emit(file);
  all.push(...emitted.diagnostics);
  const diagnostics = all.map((diagnostic) => {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (!diagnostic.file || diagnostic.start === undefined) return `error TS${diagnostic.code}: ${text}`;
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    return `candidate.ts(${line + 1},${character + 1}): error TS${diagnostic.code}: ${text}`;
  });
  return { javascript, diagnostics };
}
