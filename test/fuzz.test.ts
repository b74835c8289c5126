/**
 * The coverage-guided fuzzer (fuzz/, see fuzz/README.md): that it finds a planted bug, and a short
 * bounded pass of every target, each in a process of its own (coverage must start before the code
 * under test loads). `npm run fuzz` runs the same targets for longer.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

const RUN = path.resolve('fuzz/run.ts');

interface Report {
  target: string;
  runs: number;
  blocksCovered: number;
  crashes: Array<{ signature: string; file: string }>;
  firstCrashAt?: number;
}

/** Runs one target in a child process; its exit code and report. */
function fuzzOnce(
  target: string,
  env: Record<string, string>,
): Promise<{ code: number | null; report: Report; stderr: string }> {
  const crashes = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-fuzz-'));
  onTestFinished(() => fs.rmSync(crashes, { recursive: true, force: true }));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, '--one', target], {
      env: { ...process.env, FUZZ_CORPUS: 'none', FUZZ_CRASHES: crashes, FUZZ_SEED: '2', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // A run that outlives its test (a timeout) must not be left behind.
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('FUZZ_REPORT '));
      if (!line) return reject(new Error(`no report (exit ${code}):\n${err.slice(-2000)}`));
      resolve({
        code,
        report: JSON.parse(line.slice('FUZZ_REPORT '.length)) as Report,
        stderr: err,
      });
    });
  });
}

describe('coverage-guided fuzzer', () => {
  it('finds a bug planted behind magic, version, type and count checks, within 50,000 inputs', async () => {
    const { code, report } = await fuzzOnce('fuzz/selftest/planted.ts', {
      FUZZ_RUNS: '50000',
      FUZZ_SECONDS: '600',
      FUZZ_MAX_CRASHES: '1',
    });
    expect(code).toBe(1);
    expect(report.crashes).toHaveLength(1);
    expect(report.crashes[0]!.signature).toMatch(/^TypeError/);
    expect(report.firstCrashAt).toBeLessThan(50_000);
    // The crashing input was saved, minimised, and is the planted path: magic, version 2, type 0x41.
    const input = fs.readFileSync(report.crashes[0]!.file);
    expect(input.readUInt16BE(0)).toBe(0xcafe);
    expect(input[2]! >> 4).toBe(2);
    expect(input[3]).toBe(0x41);
  }, 120_000);

  // A short pass of each real target: any crash fails the test and names the saved input.
  for (const [target, seconds] of [
    ['frame', 2],
    ['rtp', 2],
    ['ops', 2],
    ['server', 3],
    ['p2p', 3],
    ['api', 2],
    ['compact', 2],
  ] as const) {
    it(`target ${target}: no contract broken in a ${seconds} s pass`, async () => {
      const { code, report, stderr } = await fuzzOnce(target, {
        FUZZ_SECONDS: String(seconds),
        FUZZ_RUNS: '20000',
        FUZZ_ALLOW_KNOWN: '1', // open findings of fuzz/findings/ are reported by npm run fuzz
      });
      expect(report.crashes, stderr.slice(-3000)).toEqual([]);
      expect(code).toBe(0);
      expect(report.runs).toBeGreaterThan(0);
      expect(report.blocksCovered).toBeGreaterThan(0);
    }, 90_000);
  }
});
