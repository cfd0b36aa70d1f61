/**
 * Shows WhatsApp's linking QR code: in the terminal (qrcode-terminal) and as a PNG in the data dir
 * (qrcode), for servers without a terminal at hand. The QR payload lets a phone link this client,
 * so it never goes to the logs and the PNG is readable by its owner only.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import QRCode from 'qrcode';
import qrcodeTerminal from 'qrcode-terminal';

/** Renders `payload` as a small QR code made of block characters (qrcode-terminal `small` mode). */
export function renderQrForTerminal(payload: string): Promise<string> {
  return new Promise((resolve) => qrcodeTerminal.generate(payload, { small: true }, resolve));
}

/**
 * Writes `payload` as a PNG QR code at `pngPath` (mode 0600, written to a temporary file and
 * renamed, so a reader never sees half a file).
 * @returns the PNG size in bytes
 * @throws when the directory cannot be created or the file cannot be written
 */
export async function writeQrPng(payload: string, pngPath: string): Promise<number> {
  const png = await QRCode.toBuffer(payload, { type: 'png', errorCorrectionLevel: 'M', margin: 2, width: 400 });
  await mkdir(path.dirname(pngPath), { recursive: true, mode: 0o700 });
  const tmp = `${pngPath}.${process.pid}.tmp`;
  // A temporary file left by a crash keeps its mode when overwritten: start from a new one.
  await rm(tmp, { force: true });
  await writeFile(tmp, png, { mode: 0o600, flag: 'wx' });
  await rename(tmp, pngPath);
  return png.length;
}

/** Removes the QR PNG (once linked it is stale); missing files are fine. */
export async function removeQrPng(pngPath: string): Promise<void> {
  await rm(pngPath, { force: true });
}
