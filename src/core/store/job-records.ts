/** The job records repository: `job:<id>`, with the `jobs:open` and `jobs:user:<userKey>` indexes. */
import type { Lock } from './keyed-lock.js';
import { addToIndex, removeFromIndex, type Records } from './records.js';
import type { JobRecord, JobRepository, UserKey } from './types.js';

const OPEN_JOB_STATES: ReadonlySet<JobRecord['state']> = new Set(['queued', 'running']);

export class KeyvJobRepository implements JobRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  get(id: string): Promise<JobRecord | undefined> {
    return this.records.get<JobRecord>(`job:${id}`);
  }

  /** Creates or replaces the job and keeps the open-jobs and per-user indexes in step. */
  put(job: JobRecord): Promise<void> {
    if (typeof job?.id !== 'string' || job.id.length === 0) throw new TypeError('A job id must be a non-empty string');
    return this.lock.run(`job:${job.id}`, async () => {
      const previous = await this.records.get<JobRecord>(`job:${job.id}`);
      const open = OPEN_JOB_STATES.has(job.state);
      // Indexes gain an id before the record is written and lose it after, so a crash in between
      // leaves an extra id (filtered out on read), never a missing one.
      if (job.userKey) {
        const userKey = job.userKey;
        await this.lock.run(`jobs:user:${userKey}`, () => addToIndex(this.records, `jobs:user:${userKey}`, job.id));
      }
      if (open) await this.lock.run('jobs:open', () => addToIndex(this.records, 'jobs:open', job.id));
      await this.records.set(`job:${job.id}`, job);
      if (!open && previous && OPEN_JOB_STATES.has(previous.state)) {
        await this.lock.run('jobs:open', () => removeFromIndex(this.records, 'jobs:open', job.id));
      }
      if (previous?.userKey && previous.userKey !== job.userKey) {
        const oldKey = previous.userKey;
        await this.lock.run(`jobs:user:${oldKey}`, () => removeFromIndex(this.records, `jobs:user:${oldKey}`, job.id));
      }
    });
  }

  /** Queued and running jobs, oldest first. */
  async listUnfinished(): Promise<JobRecord[]> {
    const ids = (await this.records.get<string[]>('jobs:open')) ?? [];
    const jobs = await this.records.getMany<JobRecord>(ids.map((id) => `job:${id}`));
    return jobs.filter((j): j is JobRecord => j !== undefined && OPEN_JOB_STATES.has(j.state)).sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** Deletes every job that names the user. Idempotent. */
  deleteForUser(key: UserKey): Promise<void> {
    return this.lock.run(`jobs:user:${key}`, async () => {
      const ids = (await this.records.get<string[]>(`jobs:user:${key}`)) ?? [];
      for (const id of ids) {
        await this.lock.run(`job:${id}`, async () => {
          await this.records.delete(`job:${id}`);
          await this.lock.run('jobs:open', () => removeFromIndex(this.records, 'jobs:open', id));
        });
      }
      await this.records.delete(`jobs:user:${key}`);
    });
  }
}
