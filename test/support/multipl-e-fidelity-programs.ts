/**
 * A generated mixed set of JavaScript and TypeScript programs, assembled as MultiPL-E assembles them (prompt +
 * completion + "\n" + tests, in the humaneval-js / humaneval-ts format of test/fixtures/multipl-e), for checking
 * that our isolate's verdicts equal `node` (and `tsc` then `node`) on the same files. Problems and solutions are
 * our own, written for this set; none come from the MultiPL-E data.
 */

export type FidelityLanguage = 'js' | 'ts';

export interface FidelityProgram {
  /** Unique, file-name safe: language, problem, variant. */
  id: string;
  language: FidelityLanguage;
  /** What kind of program it is (canonical, wrong-answer, syntax-error, infinite-loop, ...). */
  category: string;
  source: string;
}

interface Problem {
  name: string;
  doc: string;
  jsSignature: string;
  tsSignature: string;
  /** [arguments, expected] as JavaScript literals. */
  tests: [string, string][];
  /** Right bodies (the completion after the signature line, closing brace included); valid TypeScript too. */
  canonical: string[];
  /** Wrong answers (valid TypeScript), e.g. off by one. */
  wrong: string[];
  /** Wrong types that JavaScript's loose deepEqual still accepts (TypeScript rejects them). */
  looselyRight: string[];
}

const PROBLEMS: Problem[] = [
  {
    name: 'add_two',
    doc: '//Add two numbers x and y\n// >>> add_two(2, 3)\n// 5\n',
    jsSignature: 'function add_two(x, y){\n',
    tsSignature: 'function add_two(x: number, y: number): number {\n',
    tests: [
      ['0, 1', '1'],
      ['5, 7', '12'],
      ['-3, 3', '0'],
    ],
    canonical: ['  return x + y;\n}', '  let total = x;\n  total += y;\n  return total;\n}'],
    wrong: ['  return x - y;\n}', '  return x + y + 1;\n}'],
    looselyRight: ['  return String(x + y);\n}'],
  },
  {
    name: 'reverse_words',
    doc: '//Return the words of s in reverse order, joined by one space.\n// >>> reverse_words("a b c")\n// "c b a"\n',
    jsSignature: 'function reverse_words(s){\n',
    tsSignature: 'function reverse_words(s: string): string {\n',
    tests: [
      ['"a b c"', '"c b a"'],
      ['"hello"', '"hello"'],
      ['""', '""'],
    ],
    canonical: [
      "  return s.split(' ').reverse().join(' ');\n}",
      "  const words = s.split(' ');\n  const out = [];\n  for (let i = words.length - 1; i >= 0; i--) out.push(words[i]);\n  return out.join(' ');\n}",
    ],
    wrong: ["  return s.split('').reverse().join('');\n}", "  return s.split(' ').join(' ');\n}"],
    looselyRight: ["  return s.split(' ').reverse().join(' ') || 0;\n}"],
  },
  {
    name: 'evens',
    doc: '//Return the even numbers of the list, in order.\n// >>> evens([1, 2, 3, 4])\n// [2, 4]\n',
    jsSignature: 'function evens(l){\n',
    tsSignature: 'function evens(l: number[]): number[] {\n',
    tests: [
      ['[1, 2, 3, 4]', '[2, 4]'],
      ['[]', '[]'],
      ['[7, 9]', '[]'],
      ['[0, -2, 5]', '[0, -2]'],
    ],
    canonical: ['  return l.filter((x) => x % 2 === 0);\n}', '  const out = [];\n  for (const x of l) if (x % 2 === 0) out.push(x);\n  return out;\n}'],
    wrong: ['  return l.filter((x) => x % 2 === 1);\n}', '  return l.filter((x) => x > 0 && x % 2 === 0);\n}'],
    looselyRight: ['  return l.filter((x) => x % 2 === 0).map((x) => String(x));\n}'],
  },
  {
    name: 'count_vowels',
    doc: '//Count the vowels (a, e, i, o, u, either case) in s.\n// >>> count_vowels("Hello")\n// 2\n',
    jsSignature: 'function count_vowels(s){\n',
    tsSignature: 'function count_vowels(s: string): number {\n',
    tests: [
      ['"Hello"', '2'],
      ['"AEIOU"', '5'],
      ['"xyz"', '0'],
      ['""', '0'],
    ],
    canonical: [
      "  let n = 0;\n  for (const c of s.toLowerCase()) if ('aeiou'.includes(c)) n++;\n  return n;\n}",
      '  return (s.match(/[aeiou]/gi) || []).length;\n}',
    ],
    wrong: ['  return (s.match(/[aeiou]/g) || []).length;\n}', "  return s.split('').filter((c) => 'aeiou'.includes(c)).length + 1;\n}"],
    looselyRight: ['  return String((s.match(/[aeiou]/gi) || []).length);\n}'],
  },
  {
    name: 'fib',
    doc: '//Return the n-th Fibonacci number (fib(0) = 0, fib(1) = 1).\n// >>> fib(10)\n// 55\n',
    jsSignature: 'function fib(n){\n',
    tsSignature: 'function fib(n: number): number {\n',
    tests: [
      ['0', '0'],
      ['1', '1'],
      ['10', '55'],
      ['20', '6765'],
    ],
    canonical: [
      '  let a = 0;\n  let b = 1;\n  for (let i = 0; i < n; i++) [a, b] = [b, a + b];\n  return a;\n}',
      '  return n < 2 ? n : fib(n - 1) + fib(n - 2);\n}',
    ],
    wrong: [
      '  let a = 1;\n  let b = 1;\n  for (let i = 0; i < n; i++) [a, b] = [b, a + b];\n  return a;\n}',
      '  return n < 2 ? 1 : fib(n - 1) + fib(n - 2);\n}',
    ],
    looselyRight: ['  let a = 0;\n  let b = 1;\n  for (let i = 0; i < n; i++) [a, b] = [b, a + b];\n  return a.toString();\n}'],
  },
  {
    name: 'char_counts',
    doc: '//Count each character of s.\n// >>> char_counts("aab")\n// {"a": 2, "b": 1}\n',
    jsSignature: 'function char_counts(s){\n',
    tsSignature: 'function char_counts(s: string): {[key: string]: number} {\n',
    tests: [
      ['"aab"', '{"a": 2, "b": 1}'],
      ['""', '{}'],
      ['"zz z"', '{"z": 3, " ": 1}'],
    ],
    canonical: [
      '  const out = {};\n  for (const c of s) out[c] = (out[c] ?? 0) + 1;\n  return out;\n}',
      '  return [...s].reduce((acc, c) => { acc[c] = (acc[c] || 0) + 1; return acc; }, {});\n}',
    ],
    wrong: [
      '  const out = {};\n  for (const c of new Set(s)) out[c] = 1;\n  return out;\n}',
      "  const out = {};\n  for (const c of s) out[c] = (out[c] ?? 0) + 1;\n  out[''] = 0;\n  return out;\n}",
    ],
    looselyRight: ['  const out = {};\n  for (const c of s) out[c] = String((Number(out[c]) || 0) + 1);\n  return out;\n}'],
  },
];

/** TypeScript programs for these problems only: each costs the reference a tsc process (about 2 s of CPU). */
const TS_PROBLEMS = new Set(['evens']);

const JS_HEADER = "const assert = require('node:assert');\n";
const TS_HEADER = "declare var require: any;\nconst assert = require('node:assert');\n";

/** MultiPL-E's test block: a `test()` function of assert.deepEqual calls on `candidate`, then `test();`. */
function testsOf(problem: Problem, language: FidelityLanguage, call: (actual: string, expected: string) => string): string {
  const lines = problem.tests.map(([args, expected]) => `  ${call(`candidate(${args})`, expected)}`);
  return `${language === 'ts' ? TS_HEADER : JS_HEADER}\n\nfunction test() {\n  let candidate = ${problem.name};\n${lines.join('\n')}\n}\n\ntest();`;
}

const deepEqualTests = (problem: Problem, language: FidelityLanguage) =>
  testsOf(problem, language, (actual, expected) => `assert.deepEqual(${actual},${expected});`);
/** Tests that print instead of asserting: every completion that runs at all "passes" under node's exit code. */
const printingTests = (problem: Problem, language: FidelityLanguage) =>
  testsOf(problem, language, (actual, expected) => `console.log(${actual}, ${expected});`);

/** The TypeScript text for TypeScript, its annotations (`: number`, `: number[][]`, `: any`) dropped for JavaScript. */
function inLanguage(language: FidelityLanguage, typed: string): string {
  return language === 'ts' ? typed : typed.replace(/: (?:number\[\]\[\]|number|any)(?![\w[])/g, '');
}

/** Completions built around a right body, or standing alone: the failure kinds a model's output shows. */
function generalCompletions(problem: Problem, language: FidelityLanguage): [string, string][] {
  const right = problem.canonical[0]!;
  const withPrefix = (prefix: string) => `${prefix}\n${right}`;
  const completions: [string, string][] = [
    ['syntax-error', '  return (;\n}'],
    ['syntax-error-truncated', right.slice(0, -2)],
    ['syntax-error-extra-brace', `${right}\n}`],
    ['throws-error', '  throw new Error("not implemented");\n}'],
    ['throws-string', '  throw "no";\n}'],
    ['throws-custom-class', '  class Oops extends Error {}\n  throw new Oops("custom");\n}'],
    ['type-error-at-run', inLanguage(language, withPrefix('  const o: any = null;\n  o.x;'))],
    ['infinite-loop', '  while (true) {}\n}'],
    ['memory-bomb-heap', inLanguage(language, '  const a: number[][] = [];\n  while (true) a.push(new Array(1e6).fill(1.5));\n}')],
    ['memory-bomb-string', '  let s = "x";\n  while (true) s += s;\n}'],
    ['invalid-array-length', withPrefix('  const big = new Array(2 ** 32);')],
    ['invalid-buffer-length', withPrefix('  const big = new ArrayBuffer(2 ** 53);')],
    ['deep-recursion-infinite', inLanguage(language, '  const down = (k: number): number => down(k + 1) + 1;\n  return down(0);\n}')],
    ['deep-recursion-2000', inLanguage(language, withPrefix('  const depth = (k: number): number => (k === 0 ? 0 : 1 + depth(k - 1));\n  depth(2000);'))],
    ['prints-then-right', withPrefix('  console.log("debug", [1, 2], { a: 1 });\n  console.error("to stderr");')],
    ['unhandled-rejection', withPrefix('  Promise.reject(new Error("background"));')],
    ['handled-rejection', withPrefix('  Promise.reject(new Error("background")).catch(() => {});')],
    ['async-then-right', withPrefix('  Promise.resolve(1).then((v) => v + 1);')],
    ['redefines-test', `${right}\nfunction test() {}`],
    ['dom-global-at-run', withPrefix('  document.title;')],
    ['global-name-clash', `${right}\nconst name = "x";`],
    ['global-augment', language === 'ts' ? `${right}\ninterface Array<T> { extra: number }` : `${right}\nArray.prototype.extra = 1;`],
  ];
  if (language === 'js') completions.push(['reference-error', '  return notDefinedAnywhere;\n}']);
  return completions;
}

/** TypeScript-only completions that tsc refuses (a type error fails the candidate, unrun) or accepts in its defaults. */
function typeScriptCompletions(problem: Problem): [string, string][] {
  const right = problem.canonical[0]!;
  return [
    ['ts-type-error-return', '  return undefined as unknown as boolean;\n}'],
    ['ts-type-error-assign', `  let wrong: number = "s";\n${right}`],
    ['ts-type-error-undeclared', '  return notDefinedAnywhere;\n}'],
    ['ts-type-error-const', `  const fixed = 1;\n  fixed = 2;\n${right}`],
    ['ts-type-error-property', `  const o = { a: 1 };\n  o.b;\n${right}`],
    ['ts-type-error-process', `  process.exit(0);\n${right}`],
    ['ts-accepted-null-not-strict', `  let maybe: number = null;\n${right}`],
    ['ts-accepted-implicit-any', `  let loose;\n  loose = 1;\n  loose = "x";\n${right}`],
  ];
}

/** Standalone assert programs: Node's deepEqual / deepStrictEqual / equal / strictEqual on edge-case pairs. */
const ASSERT_PAIRS: [string, string][] = [
  ['[1, 2]', '[1, 2]'],
  ['[1, "2"]', '[1, 2]'],
  ['{a: 1, b: 2}', '{b: 2, a: 1}'],
  ['{a: undefined}', '{}'],
  ['[undefined]', '[null]'],
  ['[, 1]', '[undefined, 1]'],
  ['NaN', 'NaN'],
  ['0', '-0'],
  ['[0]', '[-0]'],
  ['null', 'undefined'],
  ['""', '0'],
  ['[]', '""'],
  ['[]', '{}'],
  ['new Date(0)', 'new Date(0)'],
  ['new Date(0)', 'new Date(1)'],
  ['/a/g', '/a/g'],
  ['/a/', '/a/g'],
  ['new Set([1, 2])', 'new Set([2, 1])'],
  ['new Set([1, 2])', 'new Set(["1", 2])'],
  ['new Map([[1, "a"]])', 'new Map([[1, "b"]])'],
  ['new Map([[1, [2]]])', 'new Map([[1, [2]]])'],
  ['[[1, [2, [3]]]]', '[[1, [2, [3]]]]'],
  ['{a: [1, {b: 2}]}', '{a: [1, {b: "2"}]}'],
  ['Object.create(null)', '{}'],
  ['[1, 2, 3]', '{0: 1, 1: 2, 2: 3}'],
  ['new Number(1)', '1'],
  ['new Number(1)', 'new Number(1)'],
  ['1', 'true'],
  ['[true]', '[1]'],
  ['"abc"', 'new String("abc")'],
  ['[0.1 + 0.2]', '[0.3]'],
  ['Object.assign([1], {x: 1})', '[1]'],
  ['new Float64Array([1, 2])', 'new Float64Array([1, 2])'],
  ['new Int8Array([1])', 'new Uint8Array([1])'],
  ['{length: 0}', '[]'],
  ['new Error("x")', 'new Error("x")'],
  ['new Error("x")', 'new Error("y")'],
  ['[1, 2]', '[1, 2, 3]'],
  ['"1"', '1'],
  ['[[]]', '[[]]'],
];

function assertPrograms(): FidelityProgram[] {
  const programs: FidelityProgram[] = [];
  ASSERT_PAIRS.forEach(([a, b], index) => {
    for (const method of ['deepEqual', 'deepStrictEqual']) {
      programs.push({
        id: `js-assert-${index}-${method}`,
        language: 'js',
        category: `assert-${method}`,
        source: `${JS_HEADER}assert.${method}(${a}, ${b});\n`,
      });
    }
  });
  const scalars: [string, string][] = [
    ['1', '"1"'],
    ['NaN', 'NaN'],
    ['null', 'undefined'],
    ['0', '-0'],
  ];
  scalars.forEach(([a, b], index) => {
    for (const method of ['equal', 'strictEqual', 'notEqual', 'notStrictEqual']) {
      programs.push({
        id: `js-assert-scalar-${index}-${method}`,
        language: 'js',
        category: `assert-${method}`,
        source: `${JS_HEADER}assert.${method}(${a}, ${b});\n`,
      });
    }
  });
  return programs;
}

/** The whole set: every problem × completion kind in both languages, plus the assert edge cases. */
export function fidelityPrograms(): FidelityProgram[] {
  const programs: FidelityProgram[] = [];
  for (const language of ['js', 'ts'] as const) {
    for (const problem of PROBLEMS.filter((each) => language === 'js' || TS_PROBLEMS.has(each.name))) {
      const prompt = problem.doc + (language === 'ts' ? problem.tsSignature : problem.jsSignature);
      const add = (category: string, completion: string, tests: string = deepEqualTests(problem, language)): void => {
        programs.push({
          id: `${language}-${problem.name}-${category}`,
          language,
          category: category.replace(/-\d+$/, ''),
          source: `${prompt}${completion}\n${tests}`,
        });
      };
      for (const [index, body] of problem.canonical.entries()) add(`canonical-${index}`, body);
      for (const [index, body] of problem.wrong.entries()) add(`wrong-answer-${index}`, body);
      for (const [index, body] of problem.looselyRight.entries()) add(`loose-type-${index}`, body);
      add('prints-no-assert-right', problem.canonical[0]!, printingTests(problem, language));
      add('prints-no-assert-wrong', problem.wrong[0]!, printingTests(problem, language));
      for (const [category, completion] of generalCompletions(problem, language)) add(category, completion);
      if (language === 'ts') for (const [category, completion] of typeScriptCompletions(problem)) add(category, completion);
    }
  }
  return [...programs, ...assertPrograms()];
}
