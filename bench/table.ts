// Shared table printing for the benchmark suites: one markdown table per measurement, columns aligned
// so the output reads in a terminal and pastes into the README unchanged.

export type Cell = string | number | undefined | null;
export type Row = Record<string, Cell>;

/** Three significant digits for mid-size numbers, no exponent noise for big ones, '-' for missing. */
export function fmt(v: Cell): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

/** `2.31x` style ratio of a to b; '-' when either is missing or b is zero. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${(a / b).toFixed(2)}x`;
}

/** Bytes as KiB/MiB/GiB with three significant digits. */
export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (Math.abs(n) >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${fmt(u === 0 ? Math.round(n) : n)} ${units[u]}`;
}

/** Renders rows as an aligned markdown table; columns are the union of the rows' keys, in first-seen order. */
export function formatTable(rows: Row[], title?: string): string {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cells = rows.map((r) => cols.map((c) => fmt(r[c])));
  // A column of numbers (or number-like text: "2.1x", "35%", "88 / 292") reads best right-aligned.
  const numberLike = (v: Cell) => v === undefined || v === null || typeof v === 'number' || /^[-+]?[\d.]/.test(v);
  const numeric = cols.map((c) => rows.every((r) => numberLike(r[c])));
  const width = cols.map((c, i) => Math.max(3, c.length, ...cells.map((row) => row[i].length)));
  const pad = (s: string, i: number) => (numeric[i] ? s.padStart(width[i]) : s.padEnd(width[i]));
  const line = (vals: string[]) => `| ${vals.map(pad).join(' | ')} |`;
  const out: string[] = [];
  if (title) out.push(`### ${title}`, '');
  out.push(line(cols));
  out.push(`|${width.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`);
  for (const row of cells) out.push(line(row));
  return out.join('\n');
}

/** Prints a table (see formatTable) followed by a blank line. */
export function printTable(rows: Row[], title?: string): void {
  if (rows.length === 0) {
    console.log(title ? `### ${title}\n\n(no rows)\n` : '(no rows)\n');
    return;
  }
  console.log(formatTable(rows, title) + '\n');
}
