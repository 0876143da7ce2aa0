import { describe, expect, it } from 'vitest';
import { csvCell, toCsv } from './csv';

describe('CSV', () => {
  it('quotes commas, quotes and line breaks, doubling quotes', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('cr\rhere')).toBe('"cr\rhere"');
  });

  it('writes numbers plainly, empties for null and non-finite', () => {
    expect(csvCell(-3.25)).toBe('-3.25');
    expect(csvCell(0)).toBe('0');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(Number.NaN)).toBe('');
  });

  it('defuses spreadsheet formulas but not negative numbers as text', () => {
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('+cmd')).toBe("'+cmd");
    expect(csvCell('@sum')).toBe("'@sum");
    expect(csvCell('-1.5')).toBe('-1.5');
  });

  it('makes a header row and CRLF-terminated records', () => {
    const csv = toCsv([{ a: 1, b: 'x,y' }, { a: 2, b: null }], [
      { key: 'a', header: 'A' },
      { key: 'b', header: 'B "quoted"' },
    ]);
    expect(csv).toBe('A,"B ""quoted"""\r\n1,"x,y"\r\n2,\r\n');
  });
});
