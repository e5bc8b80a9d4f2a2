/**
 * CRC16 of a DSMR P1 telegram (DSMR 4.0+ §6.2 / e-MUCS): CRC-16/ARC — polynomial x^16 + x^15 + x^2 + 1
 * processed LSB first (0xA001 reflected), initial value 0, no final XOR. It covers every byte from the
 * leading `/` through the `!`, line endings included, and is written as four upper-case hex digits.
 */

const table: Uint16Array = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/ARC over `bytes` (optionally continuing from `crc`). */
export function crc16(bytes: Uint8Array, crc = 0): number {
  let c = crc & 0xffff;
  for (let i = 0; i < bytes.length; i++) c = (c >>> 8) ^ table[(c ^ bytes[i]!) & 0xff]!;
  return c;
}

/** The four upper-case hex digits a meter writes after `!`. */
export function crcHex(crc: number): string {
  return crc.toString(16).toUpperCase().padStart(4, '0');
}
