import { Database } from '@nozbe/watermelondb'
import type { DatabaseAdapter } from '@nozbe/watermelondb/adapters/type'
import type { AppSchema } from '@nozbe/watermelondb/Schema'
import type { SchemaMigrations } from '@nozbe/watermelondb/Schema/migrations'

import schema from '../generated/schema'
import migrations from '../generated/migrations'
import { modelClasses } from '../generated/models'

/**
 * MakeAdapter builds the storage under the database from the generated
 * schema and migrations: SQLiteAdapter with JSI on a phone, LokiJSAdapter
 * in Node (the data layer's test).
 */
export type MakeAdapter = (schema: AppSchema, migrations: SchemaMigrations) => DatabaseAdapter

/** openDatabase opens the app's database on the adapter the platform gives. */
export function openDatabase(makeAdapter: MakeAdapter): Database {
  return new Database({ adapter: makeAdapter(schema, migrations), modelClasses })
}
