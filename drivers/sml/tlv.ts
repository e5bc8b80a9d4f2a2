/**
 * SML type-length-value elements (SML 1.04 §6.3): one TL byte (more TL bytes while bit 7 is set) gives the
 * type (octet string, boolean, signed or unsigned integer, list) and the length — the byte count including
 * the TL bytes, or for a list the number of elements. `0x01` is an empty optional, `0x00` ends a message.
 */
export type SmlNode =
  | { readonly t: 'octets'; readonly v: Buffer }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'int'; readonly v: bigint; readonly signed: boolean; readonly bytes: number }
  | { readonly t: 'list'; readonly v: readonly SmlNode[] }
  | { readonly t: 'none' };

export class SmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
  }
}

const NONE: SmlNode = Object.freeze({ t: 'none' });
const MAX_DEPTH = 12;

export class SmlCursor {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** Reads one element (recursively for lists). */
  read(depth = 0): SmlNode {
    const at = this.pos;
    const b = this.buf;
    if (at >= b.length) throw new SmlSyntaxError('unexpected end of data', at);
    if (depth > MAX_DEPTH) throw new SmlSyntaxError('lists nested too deep', at);
    let tl = b[at] as number;
    if (tl === 0x00) throw new SmlSyntaxError('unexpected end-of-message', at);
    const type = (tl >> 4) & 0x07;
    let len = tl & 0x0f;
    let tlBytes = 1;
    while (tl & 0x80) {
      tl = b[at + tlBytes] as number;
      if (at + tlBytes >= b.length) throw new SmlSyntaxError('truncated TL field', at);
      if (tlBytes >= 4) throw new SmlSyntaxError('TL field too long', at);
      len = (len << 4) | (tl & 0x0f);
      tlBytes++;
    }
    if (type === 7) {
      this.pos = at + tlBytes;
      const items: SmlNode[] = [];
      for (let i = 0; i < len; i++) items.push(this.read(depth + 1));
      return { t: 'list', v: items };
    }
    const dataLen = len - tlBytes;
    if (dataLen < 0) throw new SmlSyntaxError(`length ${len} shorter than its TL field`, at);
    const end = at + tlBytes + dataLen;
    if (end > b.length) throw new SmlSyntaxError('element runs past the end', at);
    const data = b.subarray(at + tlBytes, end);
    this.pos = end;
    switch (type) {
      case 0:
        return dataLen === 0 ? NONE : { t: 'octets', v: data };
      case 4:
        if (dataLen !== 1) throw new SmlSyntaxError('boolean of more than one byte', at);
        return { t: 'bool', v: data[0] !== 0 };
      case 5:
      case 6: {
        if (dataLen < 1 || dataLen > 8) throw new SmlSyntaxError(`integer of ${dataLen} bytes`, at);
        let v = 0n;
        for (const byte of data) v = (v << 8n) | BigInt(byte);
        const signed = type === 5;
        if (signed && (data[0] as number) & 0x80) v -= 1n << BigInt(8 * dataLen);
        return { t: 'int', v, signed, bytes: dataLen };
      }
      default:
        throw new SmlSyntaxError(`unknown type ${type}`, at);
    }
  }
}
