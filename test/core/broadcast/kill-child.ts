/**
 * A VoiceTwin process for the kill-and-resume test (test/e2e/broadcast-kill.test.ts): the real
 * app over the data dir in `BROADCAST_DATA_DIR`, the real Telegram adapter pointed at the fake
 * Bot API in `TELEGRAM_API_ROOT` with `TELEGRAM_TOKEN`, and the broadcast service. It prints
 * `ready` once polling, then runs until it is killed.
 */
import { startTelegramBot } from '../../../src/bots/telegram/index.js';
import { BroadcastService } from '../../../src/core/broadcast/index.js';
import { silentLogger } from '../../../src/core/log.js';
import { createTestApp } from '../../helpers/app.js';
import { KILL_TEST_BOT_THROTTLE, KILL_TEST_SERVICE } from './e2e-support.js';
import { speakingProviders } from './support.js';

const dataDir = process.env.BROADCAST_DATA_DIR;
const apiRoot = process.env.TELEGRAM_API_ROOT;
const token = process.env.TELEGRAM_TOKEN;
if (!dataDir || !apiRoot || !token) throw new Error('kill-child needs BROADCAST_DATA_DIR, TELEGRAM_API_ROOT and TELEGRAM_TOKEN');

const app = await createTestApp({ dataDir, env: { OPERATORS: 'telegram:1' }, providers: speakingProviders() });
const bot = await startTelegramBot({ token, engine: app.engine, logger: silentLogger, apiRoot, pollingTimeoutSec: 1, throttle: KILL_TEST_BOT_THROTTLE });
const service = new BroadcastService({ engine: app.engine, logger: silentLogger, ...KILL_TEST_SERVICE });
app.engine.registerOperatorCommand(service.command());
await service.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void Promise.all([service.stop(), bot.stop()]).then(() => app.close()).then(() => process.exit(0)));
