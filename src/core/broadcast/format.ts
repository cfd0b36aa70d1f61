/**
 * The operator-facing texts of a broadcast: progress, summary, status and dry-run estimate.
 */
import type { BroadcastCounts, BroadcastEstimate, BroadcastRequest, BroadcastStatus } from './types.js';

/** `12,345` */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `45 s`, `4 min 52 s`, `2 h 05 min`. */
export function formatDuration(sec: number): string {
  if (sec > 0 && sec < 1) return 'under 1 s';
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

function breakdown(by: Partial<Record<string, number>>): string {
  const parts = Object.entries(by)
    .filter(([, n]) => (n ?? 0) > 0)
    .sort(([a, x], [b, y]) => (y ?? 0) - (x ?? 0) || a.localeCompare(b))
    .map(([k, n]) => `${k} ${formatCount(n ?? 0)}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** One progress line: sent / failed / skipped / remaining / ETA. */
export function progressText(id: string, status: Pick<BroadcastStatus, 'counts' | 'inFlight' | 'remaining' | 'etaSec'>): string {
  const c = status.counts;
  const eta = status.etaSec !== undefined ? ` · ETA ${formatDuration(status.etaSec)}` : '';
  return (
    `Broadcast ${id}: ${formatCount(c.sent)} of ${formatCount(c.total)} sent · ${formatCount(c.failed)} failed · ` +
    `${formatCount(c.skipped)} skipped · ${formatCount(status.remaining + status.inFlight)} remaining${eta}`
  );
}

/** The final summary. */
export function summaryText(id: string, status: BroadcastStatus): string {
  const c: BroadcastCounts = status.counts;
  const tookSec = status.startedAtMs !== undefined && status.finishedAtMs !== undefined ? (status.finishedAtMs - status.startedAtMs) / 1000 : undefined;
  const how = status.state === 'cancelled' ? 'was cancelled' : status.state === 'failed' ? 'stopped with an error' : 'finished';
  const lines = [
    `Broadcast ${id} ${how}${tookSec !== undefined ? ` after ${formatDuration(tookSec)}` : ''}.`,
    `Sent: ${formatCount(c.sent)} of ${formatCount(c.total)}${breakdown({ 'own voice': c.sentBy.own, 'operator voice': c.sentBy.operator, 'default voice': c.sentBy.default })}.`,
    `Failed: ${formatCount(c.failed)}${breakdown(c.failedBy)}.`,
    `Skipped: ${formatCount(c.skipped)}${breakdown(c.skippedBy)}.`,
  ];
  const notSent = status.remaining + status.inFlight;
  if (notSent > 0) lines.push(`Not sent: ${formatCount(notSent)}.`);
  if (status.inFlightAtCrash > 0) {
    lines.push(`${formatCount(status.inFlightAtCrash)} message(s) were being sent when the service stopped; they are counted as failed and were not sent again.`);
  }
  if (status.budgetExhausted) lines.push("The synthesis budget ran out, so the rest heard the default voice.");
  if (status.error) lines.push(`Error: ${status.error}`);
  return lines.join('\n');
}

/** `/broadcast status` */
export function statusText(status: BroadcastStatus): string {
  if (status.state === 'running' || status.state === 'queued') {
    const head = (status.state === 'queued' ? `Broadcast ${status.id} is queued.` : progressText(status.id, status)) + (status.cancelRequested ? ' Cancel requested.' : '');
    return `${head}\nAudience: ${status.audience}, voice: ${status.voice}. Text: "${clip(status.text, 80)}"`;
  }
  return `${summaryText(status.id, status)}\nAudience: ${status.audience}, voice: ${status.voice}. Text: "${clip(status.text, 80)}"`;
}

/**
 * The dry-run answer.
 * @param options.senders flag channels without a registered sender (default true; false where no bot runs by design, the CLI)
 */
export function estimateText(request: BroadcastRequest, estimate: BroadcastEstimate, options: { senders?: boolean } = {}): string {
  const flagSenders = options.senders ?? true;
  const channels = Object.entries(estimate.byChannel)
    .map(([ch, e]) => `${ch} ${formatCount(e.recipients)}${e.senderRegistered || !flagSenders ? '' : ' (no bot running for it!)'}`)
    .join(', ');
  const lines = [
    `Dry run, nothing sent. Audience: ${request.audience}, voice: ${request.voice}.`,
    `Recipients: ${formatCount(estimate.recipients)}${channels ? ` (${channels})` : ''}; skipped: ${formatCount(estimate.skipped)}${breakdown(estimate.skippedBy)}.`,
  ];
  if (request.voice === 'own') lines.push(`Own twin voice: ${formatCount(estimate.ownVoices)}; the others hear the default voice.`);
  lines.push(`Estimated duration: ${formatDuration(estimate.durationSec)} at the platforms' send rates.`);
  const cost = estimate.costUsd !== undefined ? `, about $${estimate.costUsd.toFixed(2)}` : ' (no price configured for it)';
  lines.push(`Synthesis: at most ${formatCount(estimate.ttsChars)} characters with ${estimate.ttsProvider}${cost}.`);
  return lines.join('\n');
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
