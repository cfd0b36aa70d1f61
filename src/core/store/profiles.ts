/** The voice profiles repository: `profile:<userKey>`. */
import type { Lock } from './keyed-lock.js';
import { checkUserKey, type Records } from './records.js';
import type { ProfileRepository, UserKey, VoiceProfile } from './types.js';

export class KeyvProfileRepository implements ProfileRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  get(key: UserKey): Promise<VoiceProfile | undefined> {
    return this.records.get<VoiceProfile>(`profile:${key}`);
  }

  put(profile: VoiceProfile): Promise<void> {
    checkUserKey(profile?.userKey);
    return this.lock.run(`profile:${profile.userKey}`, () => this.records.set(`profile:${profile.userKey}`, profile));
  }

  delete(key: UserKey): Promise<void> {
    return this.lock.run(`profile:${key}`, () => this.records.delete(`profile:${key}`));
  }
}
