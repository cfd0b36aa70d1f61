/**
 * The error `p` rejects with, to assert on its class and fields.
 * @throws Error when `p` resolves instead
 */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
