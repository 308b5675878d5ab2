/**
 * CSV text → a table of strings (RFC 4180: comma-separated, fields optionally in double quotes with
 * quotes doubled inside, CRLF or LF line ends, a quoted field may span lines). Hand-written rather
 * than a dependency: it is ~60 lines, runs unchanged in a tab, a Web Worker and Node, and a data
 * error must name the line. A UTF-8 byte-order mark is dropped, blank lines are skipped, and a row
 * with another number of fields than the header is refused by line number.
 */

export interface TabularTable {
  /** Header names, as written (trimmed). */
  readonly columns: readonly string[];
  /** Data rows, one string per column. */
  readonly rows: readonly (readonly string[])[];
}

export class CsvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvError';
  }
}

/** Parses CSV text with a header row. `name` (a file name) prefixes errors. */
export function parseCsv(text: string, name = 'CSV'): TabularTable {
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let startLine = 1;
  let touched = false;
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const endRecord = () => {
    fields.push(field);
    // A blank line (one empty unquoted field) is no record.
    if (!(fields.length === 1 && fields[0] === '' && !touched)) records.push({ line: startLine, fields });
    fields = [];
    field = '';
    touched = false;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"') {
      if (field !== '') throw new CsvError(`${name}:${line}: a quote inside an unquoted field (quote the whole field and double its quotes)`);
      quoted = true;
      touched = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      touched = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      endRecord();
      line++;
      startLine = line;
    } else {
      field += c;
    }
  }
  if (quoted) throw new CsvError(`${name}:${startLine}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0 || touched) endRecord();
  const header = records.shift();
  if (!header) throw new CsvError(`${name}: no header row`);
  const columns = header.fields.map((h) => h.trim());
  const seen = new Set<string>();
  for (const [i, c] of columns.entries()) {
    if (c === '') throw new CsvError(`${name}:${header.line}: column ${i + 1} has no name`);
    if (seen.has(c)) throw new CsvError(`${name}:${header.line}: column "${c}" appears twice`);
    seen.add(c);
  }
  for (const r of records) {
    if (r.fields.length !== columns.length) throw new CsvError(`${name}:${r.line}: ${r.fields.length} fields, the header has ${columns.length}`);
  }
  return { columns, rows: records.map((r) => r.fields) };
}

/** A table back to CSV text (fields quoted where RFC 4180 needs it). For data files, not spreadsheets. */
export function toCsv(table: TabularTable): string {
  const cell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  return [table.columns, ...table.rows].map((r) => r.map(cell).join(',')).join('\n') + '\n';
}
