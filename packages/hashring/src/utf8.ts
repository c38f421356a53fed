/**
 * One reusable UTF-8 scratch buffer, so hashing a string never allocates on the hot path.
 *
 * `encodeUtf8(text)` writes the UTF-8 bytes of `text` into the shared buffer and returns their count; read
 * them through `utf8Scratch()` before the next call (the buffer is replaced when it has to grow). Pure ASCII
 * is copied by a plain loop (cheaper than `TextEncoder` for short keys); anything else goes through
 * `TextEncoder.encodeInto`, which turns lone surrogates into U+FFFD exactly as Node's own string hashing does.
 */

let scratch: Uint8Array = new Uint8Array(256);
let encoder: InstanceType<typeof TextEncoder> | undefined;

export function utf8Scratch(): Uint8Array {
  return scratch;
}

export function encodeUtf8(text: string): number {
  const length = text.length;
  // Worst case is 3 bytes per UTF-16 code unit (a surrogate pair is 2 units -> 4 bytes).
  if (length * 3 > scratch.length) scratch = new Uint8Array(Math.max(length * 3, scratch.length * 2));
  const out = scratch;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) {
      encoder ??= new TextEncoder();
      return encoder.encodeInto(text, out).written;
    }
    out[i] = c;
  }
  return length;
}
