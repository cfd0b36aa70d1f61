/**
 * Snowflake ids as Discord makes them: a 64-bit integer whose top 42 bits are milliseconds since the
 * Discord epoch (2015-01-01T00:00:00Z), then worker/process ids and a 12-bit increment, sent as a
 * decimal string. Follows https://discord.com/developers/docs/reference#snowflakes
 */

/** The Discord epoch in ms since the Unix epoch (https://discord.com/developers/docs/reference#snowflakes). */
export const DISCORD_EPOCH_MS = 1_420_070_400_000n;

let increment = 0n;

/** A fresh snowflake (decimal string) for the current time; unique within this process. */
export function snowflake(atMs = Date.now()): string {
  increment = (increment + 1n) & 0xfffn;
  return (((BigInt(atMs) - DISCORD_EPOCH_MS) << 22n) | (1n << 17n) | increment).toString();
}
