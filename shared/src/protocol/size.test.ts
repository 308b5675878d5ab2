import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES, oversizedMessage, wireSize } from './size';

describe('wireSize', () => {
  it('lists every binary value as an attachment with its path and byte length, in Socket.IO order', () => {
    const backing = new ArrayBuffer(1000);
    const size = wireSize('fl:result', {
      run_id: 'r',
      weights: new Uint8Array(12),
      input: { words: new Uint32Array(5), parts: [new Float32Array(3), 'x', new Uint8Array(backing, 100, 7)] },
      raw: new ArrayBuffer(9),
    });
    // a view counts its own bytes, not the buffer behind it
    expect(size.attachments).toEqual([
      { path: 'weights', bytes: 12 },
      { path: 'input.words', bytes: 20 },
      { path: 'input.parts[0]', bytes: 12 },
      { path: 'input.parts[2]', bytes: 7 },
      { path: 'raw', bytes: 9 },
    ]);
  });

  it('measures the text packet in UTF-8 bytes, with placeholders where the binaries were', () => {
    const ascii = wireSize('e', { reason: 'abc' });
    const accented = wireSize('e', { reason: 'éüç' }); // three two-byte characters
    expect(accented.text - ascii.text).toBe(3);
    const withBinary = wireSize('e', { reason: 'abc', w: new Uint8Array(1_000_000) });
    // the megabyte is an attachment; the text grows by the key and a placeholder only
    expect(withBinary.text - ascii.text).toBe(JSON.stringify({ w: { _placeholder: true, num: 0 } }).length - 1);
    const numbers = wireSize('e', { values: Array.from({ length: 1000 }, () => 0.125) });
    expect(numbers.attachments).toEqual([]);
    expect(numbers.text).toBeGreaterThan(6000); // plain arrays travel as JSON text
  });
});

describe('oversizedMessage', () => {
  it('lets an attachment of exactly the limit through and names one byte more, by path and size', () => {
    expect(oversizedMessage('fl:result', { weights: new Uint8Array(500) }, 500)).toBeUndefined();
    expect(oversizedMessage('fl:result', { weights: new Uint8Array(501) }, 500)).toBe(
      "fl:result: weights is 501 bytes, over the coordinator's limit of 500 bytes per message",
    );
    expect(oversizedMessage('fl:result', { input: { ciphertexts: [new Uint8Array(1), new Uint8Array(MAX_MESSAGE_BYTES + 1)] } })).toBe(
      "fl:result: input.ciphertexts[1] is 10,485,761 bytes, over the coordinator's limit of 10,485,760 bytes per message",
    );
  });

  it('names the JSON text when that is what is too large, and passes a full-size plain update', () => {
    expect(oversizedMessage('e', { values: Array.from({ length: 100 }, () => 0.5) }, 300)).toMatch(/^e: the message's JSON text is \d{3} bytes, over the coordinator's limit of 300 bytes per message$/);
    expect(oversizedMessage('fl:result', { weights: new Uint8Array(569_091 * 4), metrics: { train_loss: 0.4 } })).toBeUndefined();
  });
});
