// Entry point of the audio worker threads. The project runs its TypeScript through tsx; a worker
// thread started by another runtime (a test runner, for one) has no TypeScript loader of its own,
// so this registers tsx's before loading the tasks.
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./worker-tasks.ts');
export default tasks.default;
