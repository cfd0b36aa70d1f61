/**
 * The storage layer: keyv repositories (SQLite by default, Redis, memory), the encrypted blob
 * store and the data key. Contracts are in `types.ts`.
 */
export * from './types.js';
export { createStore, maskUrl, DEFAULT_DEDUPE_TTL_MS, DEFAULT_HISTORY_MAX_TURNS, DEFAULT_NAMESPACE, SQLITE_FILE } from './keyv-store.js';
export type { CreateStoreOptions, StoreBackend } from './keyv-store.js';
export { EncryptedBlobStore, createBlobStore, parseBlobKey, BlobIntegrityError, BlobNotFoundError } from './blob-store.js';
export type { BlobKind } from './blob-store.js';
export { loadDataKey, parseDataKey, isInsideDir, DataKeyLocationError, DATA_KEY_BYTES, DATA_KEY_ENV, DATA_KEY_FILE, DATA_KEY_FILE_ENV } from './data-key.js';
export { securePrivateTree, ensurePrivateDir, ensurePrivateFile, createPrivateFile, FileModeError, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-modes.js';
export type { DataKeySource } from './data-key.js';
export { KeyedLock } from './keyed-lock.js';
