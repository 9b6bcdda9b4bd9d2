// End-to-end test of the generated models: `fieldcrm schema --out generated`
// wrote every schema version's schema.ts, migrations.ts, types.ts and
// models.ts, which tsc --strict compiled into compiled/ (the Go test
// TestGeneratedModelsCompileMigrateAndSync in cmd/fieldcrm does both, then
// starts `fieldcrm serve` at FIELDCRM_URL). A phone whose app was built for
// schema version 1 syncs, is upgraded to the current version (WatermelonDB
// runs the generated migrations), syncs again with the migration, and then
// writes through the generated model classes.
'use strict'

const assert = require('node:assert/strict')
const { Database } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')
const { LokiMemoryAdapter } = require('lokijs')

const base = process.env.FIELDCRM_URL
const current = Number(process.env.FIELDCRM_SCHEMA_VERSION)
const runID = Date.now().toString(36)

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: 'Bearer ' + token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : null
}

const generated = (version) => ({
  schema: require(`./compiled/v${version}/schema`).default,
  migrations: require(`./compiled/v${version}/migrations`).default,
  models: require(`./compiled/v${version}/models`),
})

async function main() {
  const email = `admin-${runID}@models.test`
  const { access_token: token } = await api('POST', '/v1/auth/signup', null,
    { company_name: 'Generated ' + runID, name: 'Admin', email, password: 'correct horse battery', device_id: 'phone-g' })
  const acme = await api('POST', '/v1/customers', token, { name: 'Acme Trading', kind: 'company' })
  await api('POST', '/v1/interactions', token, { customer_id: acme.id, channel: 'phone', content: 'first call' })

  const storage = new LokiMemoryAdapter() // survives reopening: an app upgrade
  let db
  let migrationsEnabledAtVersion
  const open = (version) => {
    const g = generated(version)
    assert.equal(g.schema.version, version)
    db = new Database({
      adapter: new LokiJSAdapter({ schema: g.schema, migrations: g.migrations, useWebWorker: false, useIncrementalIndexedDB: true,
        _testLokiAdapter: storage, dbName: 'generated' + runID, onSetUpError: (e) => { throw e } }),
      modelClasses: g.models.modelClasses,
    })
    migrationsEnabledAtVersion = migrationsEnabledAtVersion ?? version
    return g
  }
  const sent = []
  const sync = async () => {
    let more = true
    while (more) {
      await synchronize({
        database: db,
        migrationsEnabledAtVersion,
        pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
          sent.push({ schemaVersion, migration })
          const q = `last_pulled_at=${lastPulledAt ?? 'null'}&schema_version=${schemaVersion}&migration=${encodeURIComponent(JSON.stringify(migration ?? null))}`
          const { changes, timestamp, has_more: hasMore } = await api('GET', '/v1/sync/pull?' + q, token)
          more = hasMore
          return { changes, timestamp }
        },
        pushChanges: async ({ changes, lastPulledAt }) => {
          const res = await api('POST', `/v1/sync/push?last_pulled_at=${lastPulledAt}`, token, { changes })
          assert.deepEqual(res.rejected, {}, 'the server rejected pushed records')
          return { experimentalRejectedIds: res.experimentalRejectedIds }
        },
      })
    }
  }

  // The app as built for version 1: no notifications table, no external_ref,
  // the server's times under created_at.
  open(1)
  await sync()
  const old = await db.get('customers').find(acme.id)
  assert.equal(old.name, 'Acme Trading')
  assert.equal(old._raw.external_ref, undefined, 'version 1 has no external_ref')

  // The upgrade: WatermelonDB migrates the database with the generated
  // migrations, and the next sync asks the server for what they added.
  const loki = db.adapter.underlyingAdapter._dispatcher._worker._bridge.driver.loki
  await new Promise((resolve) => loki.close(resolve))
  const g = open(current)
  await sync()
  const migration = sent.find((s) => s.migration)
  assert.ok(migration, 'the first sync after the upgrade sent no migration')
  const expected = await api('GET', '/v1/sync/schema', token)
  assert.equal(migration.schemaVersion, expected.version)
  assert.equal(migration.migration.from, 1)
  assert.deepEqual(migration.migration.tables, ['notifications'])
  const customers = migration.migration.columns.find((c) => c.table === 'customers')
  assert.deepEqual([...customers.columns].sort(), ['external_ref', 'server_created_at', 'server_updated_at'])

  // The generated classes read what the server sent, typed.
  const customer = await db.get('customers').find(acme.id)
  assert.ok(customer instanceof g.models.Customer)
  assert.equal(customer.kind, 'company')
  assert.ok(customer.serverCreatedAt instanceof Date)
  assert.equal(customer.serverCreatedAt.getTime(), Date.parse(acme.created_at))
  assert.ok(Array.isArray(customer.phones), 'a JSON list column reads as a list')
  const calls = await customer.interactions.fetch()
  assert.equal(calls.length, 1)
  assert.equal((await calls[0].customer.fetch()).id, acme.id, 'a belongs_to relation')

  // Writes through the generated classes sync: WatermelonDB fills its own
  // created_at and updated_at, which the server accepts and ignores.
  let visit
  await db.write(async () => {
    visit = await db.get('interactions').create((i) => {
      i.customer.set(customer)
      i.channel = 'visit'
      i.content = 'met the buyer'
    })
    await customer.update((c) => { c.title = 'Key account' })
  })
  assert.ok(visit.createdAt instanceof Date, 'WatermelonDB set its own created_at')
  await sync()
  const stored = await api('GET', `/v1/interactions/${visit.id}`, token)
  assert.equal(stored.channel, 'visit')
  assert.equal(stored.customer_id, acme.id)
  assert.equal((await api('GET', `/v1/customers/${acme.id}`, token)).title, 'Key account')
  console.log(`generated models e2e: ok (from schema version 1 to ${current})`)
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
