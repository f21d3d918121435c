/** The tests' PostgreSQL: where it is, and the removal of the schemas a test file made there. */
import pg from 'pg';

export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Drops each schema with everything in it (a schema never made is no error). */
export async function dropSchemas(schemas: Iterable<string>, url = POSTGRES_URL): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await admin.end();
  }
}
