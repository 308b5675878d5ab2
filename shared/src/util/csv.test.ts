import { describe, expect, it } from 'vitest';
import { csvCell } from './csv';

describe('csvCell (RFC 4180 + OWASP CSV injection)', () => {
  it.each([
    [null, ''],
    [undefined, ''],
    [1.5, '1.5'],
    [-0.25, '-0.25'],
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=HYPERLINK("http://evil.example","x")', `"'=HYPERLINK(""http://evil.example"",""x"")"`],
    ['+1+cmd|/C calc!A0', "'+1+cmd|/C calc!A0"],
    ['-2+3', "'-2+3"],
    ['@SUM(A1:A9)', "'@SUM(A1:A9)"],
    ['\t=1', "'\t=1"],
    ['\r=1', `"'\r=1"`],
    ['a=1', 'a=1'],
  ])('csvCell(%j) = %j', (v, want) => expect(csvCell(v)).toBe(want));
});
