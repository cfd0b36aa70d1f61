import { storeContract } from './contract.js';
import { makeHarness } from './harness.js';

storeContract('memory', { persistent: false }, () => makeHarness('memory'));
