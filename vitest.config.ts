import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Audio tests spawn ffmpeg, espeak-ng and pocketsphinx, but many files mostly wait on the clock
    // (real-time phone audio, paced broadcasts, restarted processes, a browser): three workers keep
    // a 2-core machine busy. VITEST_MAX_FORKS overrides.
    pool: 'forks',
    poolOptions: { forks: { maxForks: Number(process.env.VITEST_MAX_FORKS ?? 3), minForks: 1 } },
    reporters: ['default', './test/summary-reporter.ts'],
    setupFiles: ['./test/setup.ts'],
  },
});
