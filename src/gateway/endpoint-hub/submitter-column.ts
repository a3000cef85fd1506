// Endpoints registered before sharing (issue 19) get task_requests.submitter on wake: the guest who
// submitted a request (NULL: the endpoint's owner), read with each task's facts for its lineage.

export function migrateSubmitter(sql: SqlStorage): void {
  const columns = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('task_requests')").toArray();
  if (columns.length > 0 && !columns.some((c) => c.name === 'submitter')) sql.exec('ALTER TABLE task_requests ADD COLUMN submitter TEXT');
}
