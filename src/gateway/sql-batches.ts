// Bulk statements for a Durable Object's SQLite, which binds at most 100 parameters per statement:
// multi-row INSERTs and `IN (...)` lists are cut into chunks under that cap.

export const MAX_SQL_PARAMS = 100;

/** Runs `INSERT <head> (cols) VALUES (?,..),(?,..)` over `rows`, as few statements as the cap allows. */
export function insertRows(sql: SqlStorage, head: string, columnCount: number, rows: ReadonlyArray<readonly SqlStorageValue[]>, tail = ''): void {
  const perStatement = Math.max(1, Math.floor(MAX_SQL_PARAMS / columnCount));
  const tuple = `(${new Array(columnCount).fill('?').join(',')})`;
  let fullStatement: string | null = null;
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const statement = chunk.length === perStatement ? (fullStatement ??= `${head} VALUES ${new Array(perStatement).fill(tuple).join(',')}${tail}`) : `${head} VALUES ${new Array(chunk.length).fill(tuple).join(',')}${tail}`;
    sql.exec(statement, ...chunk.flat());
  }
}

/** Calls `run(placeholders, ids)` once per chunk of ids, `placeholders` being `?,?,…` for that chunk. */
export function forEachIdChunk<T>(ids: readonly T[], run: (placeholders: string, chunk: T[]) => void, reserved = 0): void {
  const size = MAX_SQL_PARAMS - reserved;
  for (let start = 0; start < ids.length; start += size) {
    const chunk = ids.slice(start, start + size);
    run(new Array(chunk.length).fill('?').join(','), chunk);
  }
}
