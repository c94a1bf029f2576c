/**
 * `evalpipe sandbox build --from-dockerfile` against the REAL Docker daemon, offline: sandbox/Dockerfile is built
 * FROM the base image the default (debootstrap) build leaves, so no registry and no apt-get are needed, and the
 * image must pass `sandbox check` and behave in the pool exactly as the default image does.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliInProcess as cli } from '../../../test/support/cli-in-process.js';
import { connectDocker, imageExists } from '../../sandbox/docker-host.js';
import { debootstrapBaseTag } from '../../sandbox/dockerfile-build.js';
import { expectCleanSandboxCheck, probeDocker, requireSandbox, testHumanEvalPath } from '../../../test/support/docker.js';
import { recipeHash } from '../../sandbox/image-recipe.js';
import type { SandboxCheckReport } from '../../sandbox/sandbox-check.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';

const docker = await probeDocker();

/** What a candidate sees of its image: identity, environment, python, the runner, and the safety facts. */
const FACTS_PROGRAM = [
  'import grp, hashlib, json, os, pwd, sys',
  'status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)',
  'mounts = {fields[1]: fields[3] for fields in (line.split() for line in open("/proc/self/mounts"))}',
  'print(json.dumps({',
  '    "uid": os.getuid(), "gid": os.getgid(), "user": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name,',
  '    "sandbox_passwd_lines": sum(line.startswith("sandbox:") for line in open("/etc/passwd")),',
  '    "environ": sorted(item for item in os.environ.items() if item[0] != "HOSTNAME"), "cwd": os.getcwd(), "python": sys.version, "executable": sys.executable,',
  '    "runner": hashlib.sha256(open("/opt/evalpipe/runner.py", "rb").read()).hexdigest(),',
  '    "CapEff": status["CapEff"], "CapBnd": status["CapBnd"], "NoNewPrivs": status["NoNewPrivs"],',
  '    "root_ro": "ro" in mounts["/"].split(","),',
  '}))',
].join('\n');

async function imageFacts(image: string): Promise<Record<string, unknown>> {
  const pool = await SandboxPool.open({ image, concurrency: 1 });
  try {
    const result = await pool.execute(FACTS_PROGRAM);
    expect(result.status, result.stderr).toBe('passed');
    return JSON.parse(result.stdout.trim()) as Record<string, unknown>;
  } finally {
    await pool.close();
  }
}

describe('evalpipe sandbox build: Dockerfile options need --from-dockerfile', () => {
  it('--base-image or --tag without --from-dockerfile: one clear line naming the flag', async () => {
    for (const flag of ['--base-image', '--tag']) {
      const result = await cli(['sandbox', 'build', flag, 'evalpipe-sandbox-base:0']);
      expect(result.code).toBe(2); // every bad value exits 2
      expect(result.stderr.trim()).toBe(`evalpipe: ${flag} only applies to the Dockerfile build — add --from-dockerfile, or leave out ${flag}`);
    }
  });
});

describe.skipIf(docker.skip)('evalpipe sandbox build --from-dockerfile --base-image (real Docker daemon, no registry)', () => {
  const tag = `evalpipe-sandbox-dockerfile-test:${randomBytes(6).toString('hex')}`;
  let defaultImage: string;
  let baseImage: string;

  beforeAll(async () => {
    defaultImage = await requireSandbox(docker);
    baseImage = await debootstrapBaseTag();
    if (!(await imageExists(await connectDocker(), baseImage))) {
      throw new Error(`the debootstrap base image ${baseImage} is not on this Docker host: rebuild it with \`bash scripts/build-sandbox-image.sh --force\``);
    }
  });

  afterAll(async () => {
    const client = await connectDocker().catch(() => undefined);
    await client
      ?.getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  });

  it('a base image this host lacks, with no registry: one clear error naming the image and --base-image', async () => {
    const missing = 'evalpipe-test-no-such-base:never';
    const result = await cli(['sandbox', 'build', '--from-dockerfile', '--base-image', missing, '--tag', tag]);
    expect(result.code).toBe(1);
    const lines = result.stderr
      .trim()
      .split('\n')
      .filter((line) => line.startsWith('evalpipe:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^evalpipe: the base image ${missing} is not on this Docker host and could not be pulled \\(.+\\) — without a registry, pass --base-image .*e\\.g\\. --base-image ${baseImage}, which this host has`,
      ),
    );
    expect(result.stderr).not.toMatch(/^\s+at /m); // no stack trace
    expect(await imageExists(await connectDocker(), tag)).toBe(false);
  });

  it('builds offline (no apt-get) into an image that passes `sandbox check` and behaves as the default image', async () => {
    const build = await cli(['sandbox', 'build', '--from-dockerfile', '--base-image', baseImage, '--tag', tag, '--json']);
    expect(build.code, build.stderr).toBe(0);
    expect(JSON.parse(build.stdout)).toMatchObject({ image: tag, built: true });
    // The RUN step's own output (the log also echoes the step's script, so match whole lines).
    expect(build.stderr).toMatch(/^sandbox build: the base image's python3 has the standard library: no apt-get$/m);
    expect(build.stderr).not.toMatch(/^sandbox build: installing python3 from Debian/m);

    // The image's own settings match the default build's (PATH aside: the classic builder writes Docker's default
    // PATH into the image, which the daemon gives the default image's containers anyway).
    const client = await connectDocker();
    const config = async (image: string): Promise<Record<string, unknown>> => {
      const { Config } = await client.getImage(image).inspect();
      return {
        User: Config.User,
        WorkingDir: Config.WorkingDir,
        Cmd: Config.Cmd,
        Entrypoint: Config.Entrypoint,
        Env: (Config.Env ?? []).filter((entry) => !entry.startsWith('PATH=')),
        Labels: Config.Labels,
      };
    };
    const built = await config(tag);
    expect(built).toEqual(await config(defaultImage));
    expect(built).toMatchObject({ User: '10001:10001', Labels: { 'evalpipe.sandbox': '1', 'evalpipe.recipe': await recipeHash() } });

    const humaneval = testHumanEvalPath();
    expect(humaneval, 'the tests read ../shared/datasets/HumanEval.jsonl.gz').toBeDefined();
    const check = await cli(['sandbox', 'check', '--image', tag, '--humaneval', humaneval!, '--json']);
    const report = JSON.parse(check.stdout) as SandboxCheckReport;
    expect(report.image).toBe(tag);
    expectCleanSandboxCheck(report);
    expect(check.code).toBe(0);

    // A candidate sees the same thing in both images, and the safety facts hold.
    const facts = await imageFacts(tag);
    expect(facts).toMatchObject({
      uid: 10001,
      gid: 10001,
      user: 'sandbox',
      sandbox_passwd_lines: 1,
      CapEff: '0000000000000000',
      CapBnd: '0000000000000000',
      NoNewPrivs: '1',
      root_ro: true,
    });
    expect(facts).toEqual(await imageFacts(defaultImage));
  });
});
