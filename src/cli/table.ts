/**
 * Rows as aligned columns two spaces apart, the first row the header; the last column is not
 * padded, and on a terminal each line is cut at its width.
 */
export function formatTable(rows: string[][]): string {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  const width = process.stdout.isTTY ? process.stdout.columns : Infinity;
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] as number)))
        .join('  ')
        .slice(0, width),
    )
    .join('\n')
    .concat('\n');
}
