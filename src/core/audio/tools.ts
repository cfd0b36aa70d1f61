/**
 * Start-up check of the audio tools, so a missing ffmpeg is reported with an install hint
 * instead of voice notes silently failing later.
 */
import { DependencyError } from '../errors.js';
import { FFMPEG_INSTALL_HINT, audioToolPaths, runTool } from './process.js';

/** What {@link checkAudioTools} found. */
export interface AudioToolsInfo {
  /** Version string from `ffmpeg -version`, e.g. `5.1.6-0+deb12u1`. */
  ffmpegVersion: string;
  /** Version string from `ffprobe -version`. */
  ffprobeVersion: string;
  /** True when ffmpeg has the libopus encoder (always true on success). */
  opus: boolean;
}

/**
 * Runs `ffmpeg -version`, `ffprobe -version` and `ffmpeg -encoders` and checks for libopus.
 *
 * @param options.ffmpegPath / options.ffprobePath binaries to check (default: `FFMPEG_PATH` /
 *   `FFPROBE_PATH`, else `ffmpeg` / `ffprobe` on PATH)
 * @param options.timeoutMs per command, ms (default 10000)
 * @throws DependencyError naming the missing tool with an install hint (`apt-get install ffmpeg`),
 *   when a tool is missing or fails, or when ffmpeg lacks the libopus encoder
 */
export async function checkAudioTools(options: { ffmpegPath?: string; ffprobePath?: string; timeoutMs?: number } = {}): Promise<AudioToolsInfo> {
  const paths = audioToolPaths();
  const ffmpeg = options.ffmpegPath ?? paths.ffmpeg;
  const ffprobe = options.ffprobePath ?? paths.ffprobe;
  const timeoutMs = options.timeoutMs ?? 10_000;

  const version = async (command: string, label: string): Promise<string> => {
    const result = await runTool(command, ['-hide_banner', '-version'], { timeoutMs, label }).catch((err: unknown) => {
      if (err instanceof DependencyError) throw new DependencyError(label, FFMPEG_INSTALL_HINT);
      throw new DependencyError(label, `${label} did not run (${(err as Error).message}); ${FFMPEG_INSTALL_HINT}`);
    });
    const match = /version\s+(\S+)/.exec(result.stdout.toString('utf8'));
    if (result.exitCode !== 0 || !match) throw new DependencyError(label, `\`${command} -version\` failed; ${FFMPEG_INSTALL_HINT}`);
    return match[1]!;
  };

  const ffmpegVersion = await version(ffmpeg, 'ffmpeg');
  const ffprobeVersion = await version(ffprobe, 'ffprobe');
  const encoders = await runTool(ffmpeg, ['-hide_banner', '-encoders'], { timeoutMs, label: 'ffmpeg' });
  const opus = /^\s*A\S*\s+libopus\s/m.test(encoders.stdout.toString('utf8'));
  if (!opus) {
    throw new DependencyError(
      'ffmpeg (libopus encoder)',
      'this ffmpeg cannot encode Opus voice notes; install a build with libopus: `apt-get install ffmpeg` on Debian/Ubuntu, `brew install ffmpeg` on macOS',
    );
  }
  return { ffmpegVersion, ffprobeVersion, opus };
}
