// Measures a first sync through @fieldcrm/watermelondb (the real
// WatermelonDB, LokiJS in Node) against `fieldcrm serve` at FIELDCRM_URL:
// a rep with FIELDCRM_BENCH_RECORDS customers (seeded first by pushes of
// 5,000), then one client's first sync, timed end to end, with the Node
// process's peak resident memory sampled every 50 ms (FIELDCRM_BENCH_REP
// and FIELDCRM_BENCH_ADD reuse a seeded rep; FIELDCRM_BENCH_AUTOSAVE below;
// FIELDCRM_BENCH_ADAPTER=sqlite for WatermelonDB's SQLite adapter instead of
// LokiJS, see sqliteAdapter). Not run in CI; the
// figures are in docs/benchmarks.md.
'use strict'

const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { LokiMemoryAdapter } = require('lokijs')
const wmLogger = require('@nozbe/watermelondb/utils/common/logger').default
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createSync, signIn, tokenCredentials } = require('@fieldcrm/watermelondb')

wmLogger.log = () => {}
const base = process.env.FIELDCRM_URL
const records = Number(process.env.FIELDCRM_BENCH_RECORDS || 100000)
const runID = Date.now().toString(36)
const password = 'correct horse battery'
let schema

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: 'Bearer ' + token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

// sqliteAdapter is WatermelonDB's SQLite adapter as it runs in Node
// (better-sqlite3, not a dependency of the package: install it beside it),
// on a file in a new temporary directory: the database is outside the
// JavaScript heap, as on a phone, with the same SQL. Turbo Login needs the
// native JSI side, which Node has not, so the pull is paged.
function sqliteAdapter() {
  const SQLiteAdapter = require('@nozbe/watermelondb/adapters/sqlite').default
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrm-bench-'))
  return new SQLiteAdapter({
    schema: appSchema({ version: schema.version, tables: schema.tables.map((t) => tableSchema({ name: t.name, columns: t.columns })) }),
    dbName: path.join(dir, 'phone.db'),
    onSetUpError: (e) => { throw e },
  })
}

async function main() {
  // FIELDCRM_BENCH_REP (an e-mail) reuses a rep seeded by an earlier run,
  // and FIELDCRM_BENCH_ADD customers more are seeded for them.
  let email = process.env.FIELDCRM_BENCH_REP
  let toSeed = Number(process.env.FIELDCRM_BENCH_ADD || records)
  let admin
  if (!email) {
    admin = (await api('POST', '/v1/auth/signup', null, { company_name: 'Bench ' + runID, name: 'Admin', email: `admin-${runID}@bench.test`, password })).access_token
    const mgr = await api('POST', '/v1/users', admin, { email: `mgr-${runID}@bench.test`, name: 'Manager', password, role: 'manager' })
    const team = await api('POST', '/v1/teams', admin, { name: 'Field', manager_id: mgr.id })
    email = (await api('POST', '/v1/users', admin, { email: `rep-${runID}@bench.test`, name: 'Rep', password, role: 'rep', team_id: team.id })).email
    toSeed = records
  }
  const seeder = (await signIn(base, { email, password, deviceId: 'seed' })).access_token
  schema = await api('GET', '/v1/sync/schema', seeder)
  const t0 = Date.now()
  const { timestamp } = await api('GET', `/v1/sync/pull?last_pulled_at=null&schema_version=${schema.version}`, seeder)
  for (let i = 0; i < toSeed; i += 5000) {
    const created = []
    for (let j = i; j < Math.min(toSeed, i + 5000); j++) {
      created.push({ id: `b${runID}${j}`, name: `Customer ${j}`, kind: 'company', stage: 'lead', customer_type: 'normal',
        industry: 'retail', region: 'South China', tags: '["bench"]', _status: 'created', _changed: '' })
    }
    await api('POST', `/v1/sync/push?last_pulled_at=${timestamp}`, seeder, { changes: { customers: { created, updated: [], deleted: [] } } })
  }
  console.log(`seeded ${toSeed} customers (${records} in all) for ${email} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)

  global.gc?.()
  const baseline = process.memoryUsage().rss
  let peak = baseline
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
  const start = Date.now()
  const tokens = await signIn(base, { email, password, deviceId: 'phone' })
  const adapter = process.env.FIELDCRM_BENCH_ADAPTER === 'sqlite' ? sqliteAdapter() : new LokiJSAdapter({
    schema: appSchema({ version: schema.version, tables: schema.tables.map((t) => tableSchema({ name: t.name, columns: t.columns })) }),
    useWebWorker: false, useIncrementalIndexedDB: true, _testLokiAdapter: new LokiMemoryAdapter(), dbName: 'bench' + runID,
    // FIELDCRM_BENCH_AUTOSAVE=0: LokiJS keeps no serialized copy of the
    // database (in Node it saves to memory every 500 ms), to tell its
    // memory from the sync's.
    extraLokiOptions: process.env.FIELDCRM_BENCH_AUTOSAVE === '0' ? { autosave: false } : {},
    onSetUpError: (e) => { throw e },
  })
  const database = new Database({ adapter, modelClasses: schema.tables.map((t) => class extends Model { static table = t.name }) })
  const client = createSync({
    baseUrl: base, database, deviceId: 'phone',
    credentials: tokenCredentials({ baseUrl: base, tokens, onSignedOut: () => { throw new Error('signed out') } }),
  })
  const report = await client.sync()
  const elapsed = (Date.now() - start) / 1000
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  const held = await database.get('customers').query().fetchCount()
  // WatermelonDB keeps a model of every record a sync created in its record
  // cache (a private field, read here only to tell that memory apart).
  const cached = database.get('customers')._cache.map.size
  if (held !== records) throw new Error(`the phone holds ${held} customers, not ${records}`)
  const mb = (n) => (n / 1024 / 1024).toFixed(0)
  global.gc?.()
  const heldHeap = process.memoryUsage().heapUsed
  console.log(`first sync of ${records} records: ${elapsed.toFixed(1)} s end to end, ${report.pages} pages, ` +
    `${(records / elapsed).toFixed(0)} records/s; Node peak RSS ${mb(peak)} MB (${mb(baseline)} MB before); ` +
    `JS heap after the sync: ${mb(heldHeap)} MB (the LokiJS database included), ${cached} customers cached as models by WatermelonDB`)
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
