/**
 * One CSV cell, safe to open in a spreadsheet: RFC 4180 quoting (a cell with a comma, quote, CR or
 * LF is quoted and its quotes doubled) and OWASP's CSV-injection rule — a text cell that begins
 * with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula by Excel, LibreOffice
 * or Sheets, so it is prefixed with `'` (shown as text, the formula never runs). Hospital-chosen
 * text (metric names, hospital ids, reasons) reaches exports; numbers are written as numbers
 * (a negative number is data, not a formula).
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v);
  const s = FORMULA_START.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
