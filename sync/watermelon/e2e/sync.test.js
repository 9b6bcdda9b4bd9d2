// End-to-end test: two simulated phones run the real WatermelonDB sync
// (synchronize() with the LokiJS adapter, in Node) against a running
// `fieldcrm serve` at FIELDCRM_URL. Run by the Go test
// TestWatermelonDBClientEndToEnd in cmd/fieldcrm, which starts the server.
'use strict'

const assert = require('node:assert/strict')
const { Database, Model, appSchema, tableSchema, Q } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')

const base = process.env.FIELDCRM_URL
const runID = Date.now().toString(36)

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: 'Bearer ' + token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  const json = text ? JSON.parse(text) : null
  if (!res.ok) throw Object.assign(new Error(`${method} ${path}: ${res.status} ${text}`), { status: res.status, problem: json })
  return json
}

// A phone: its own WatermelonDB (LokiJS in memory), its own login (device id).
async function phone(name, email, password, schema) {
  const { access_token: token } = await api('POST', '/v1/auth/login', null, { email, password, device_id: name })
  const models = schema.tables.map((t) => class extends Model { static table = t.name })
  const adapter = new LokiJSAdapter({
    schema: appSchema({
      version: schema.version,
      tables: schema.tables.map((t) => tableSchema({
        name: t.name,
        columns: t.columns.map((c) => ({ name: c.name, type: c.type, isOptional: !!c.isOptional, isIndexed: !!c.isIndexed })),
      })),
    }),
    useWebWorker: false,
    useIncrementalIndexedDB: false,
    dbName: name + runID,
    onSetUpError: (e) => { throw e },
  })
  const db = new Database({ adapter, modelClasses: models })
  let loseNextPushResponse = false
  return {
    name, db, token,
    loseNextPushResponse() { loseNextPushResponse = true },
    // sync is the documented client flow: one synchronize(), and on 410
    // (resync required) the recovery: push the local changes with the old
    // cursor (the server applies them blind, recording conflicts), then reset
    // the local database and pull everything from null.
    async sync() {
      try {
        await this.syncOnce()
      } catch (err) {
        if (err.status !== 410) throw err
        await synchronize({
          database: db,
          pullChanges: async ({ lastPulledAt }) => ({ changes: {}, timestamp: lastPulledAt }),
          pushChanges: async ({ changes, lastPulledAt }) => {
            const res = await api('POST', `/v1/sync/push?last_pulled_at=${lastPulledAt}`, token, { changes })
            return { experimentalRejectedIds: res.experimentalRejectedIds }
          },
        })
        await db.write(() => db.unsafeResetDatabase())
        await this.syncOnce()
      }
    },
    async syncOnce() {
      await synchronize({
        database: db,
        pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
          const q = `last_pulled_at=${lastPulledAt ?? 'null'}&schema_version=${schemaVersion}&migration=${encodeURIComponent(JSON.stringify(migration ?? null))}`
          const { changes, timestamp } = await api('GET', '/v1/sync/pull?' + q, token)
          return { changes, timestamp }
        },
        pushChanges: async ({ changes, lastPulledAt }) => {
          const res = await api('POST', `/v1/sync/push?last_pulled_at=${lastPulledAt}`, token, { changes })
          if (loseNextPushResponse) {
            loseNextPushResponse = false
            throw new Error('simulated lost response')
          }
          return { experimentalRejectedIds: res.experimentalRejectedIds }
        },
      })
    },
    async create(table, fields) {
      let rec
      await db.write(async () => {
        rec = await db.get(table).create((r) => { for (const [k, v] of Object.entries(fields)) r._setRaw(k, v) })
      })
      return rec.id
    },
    async update(table, id, fields) {
      await db.write(async () => {
        const rec = await db.get(table).find(id)
        await rec.update((r) => { for (const [k, v] of Object.entries(fields)) r._setRaw(k, v) })
      })
    },
    async remove(table, id) {
      await db.write(async () => { await (await db.get(table).find(id)).markAsDeleted() })
    },
    async get(table, id) {
      try { return (await db.get(table).find(id))._raw } catch { return null }
    },
    async count(table) { return db.get(table).query().fetchCount() },
  }
}

async function main() {
  const password = 'correct horse battery'
  const admin = await api('POST', '/v1/auth/signup', null, {
    company_name: 'E2E ' + runID, name: 'Admin', email: `admin-${runID}@e2e.test`, password,
  })
  const mgr = await api('POST', '/v1/users', admin.access_token, { email: `mgr-${runID}@e2e.test`, name: 'Manager', password, role: 'manager' })
  const team = await api('POST', '/v1/teams', admin.access_token, { name: 'Field', manager_id: mgr.id })
  const repEmail = `rep-${runID}@e2e.test`
  await api('POST', '/v1/users', admin.access_token, { email: repEmail, name: 'Rep', password, role: 'rep', team_id: team.id })
  const schema = await api('GET', '/v1/sync/schema', admin.access_token)

  const a = await phone('phone-a', repEmail, password, schema)
  const b = await phone('phone-b', repEmail, password, schema)
  await a.sync()
  await b.sync()

  // 1. Offline creates on both phones; the server assigns customer numbers.
  const acme = await a.create('customers', {
    name: 'Acme Trading', kind: 'company', phones: JSON.stringify([{ label: 'office', number: '020 8888 6666' }]),
    tags: JSON.stringify(['new']), stage: 'lead', customer_type: 'normal',
  })
  const visit = await a.create('interactions', { customer_id: acme, channel: 'visit', content: 'first visit', occurred_at: Date.now() })
  const globex = await b.create('customers', { name: 'Globex', kind: 'company', stage: 'lead', customer_type: 'normal' })
  await a.sync()
  await b.sync()
  await a.sync()
  for (const p of [a, b]) {
    const c = await p.get('customers', acme)
    assert.ok(c, `${p.name} lacks the customer created on phone-a`)
    assert.match(c.number, /^C\d{4}-\d{6}-\d$/, `${p.name}: customer number ${c.number}`)
    assert.equal(JSON.parse(c.phones)[0].number, '+862088886666')
    assert.ok(await p.get('customers', globex), `${p.name} lacks the customer created on phone-b`)
    assert.ok(await p.get('interactions', visit), `${p.name} lacks the visit`)
  }

  // 2. Edits of different fields of one customer on both phones both survive.
  await a.update('customers', acme, { industry: 'retail' })
  await b.update('customers', acme, { region: 'South China' })
  await a.sync()
  await b.sync()
  await a.sync()
  for (const p of [a, b]) {
    const c = await p.get('customers', acme)
    assert.equal(c.industry, 'retail', `${p.name}: industry`)
    assert.equal(c.region, 'South China', `${p.name}: region`)
  }

  // 3. The same field on both: the later push wins, the conflict is recorded.
  await a.update('customers', acme, { title: 'Owner' })
  await b.update('customers', acme, { title: 'Boss' })
  await a.sync()
  await b.sync()
  await a.sync()
  for (const p of [a, b]) assert.equal((await p.get('customers', acme)).title, 'Boss', `${p.name}: title`)
  const console_ = await api('POST', '/v1/auth/login', null, { email: `mgr-${runID}@e2e.test`, password, device_id: 'console' })
  const conflicts = await api('GET', `/v1/conflicts?record_id=${acme}`, console_.access_token) // the manager sees them
  const title = conflicts.data.filter((c) => c.column === 'title')
  assert.equal(title.length, 1, 'one title conflict recorded')
  assert.equal(title[0].server_value, '"Owner"')
  assert.equal(title[0].device_value, '"Boss"')

  // 4. A delete on one phone reaches the other.
  await a.remove('customers', globex)
  await a.sync()
  await b.sync()
  assert.equal(await b.get('customers', globex), null, 'phone-b still has the deleted customer')

  // 5. A push whose response is lost is retried by the next sync: nothing doubles.
  const call = await a.create('interactions', { customer_id: acme, channel: 'phone', content: 'follow-up call', occurred_at: Date.now() })
  a.loseNextPushResponse()
  await assert.rejects(a.sync(), /simulated lost response/)
  await a.sync()
  await b.sync()
  const listed = await api('GET', `/v1/customers/${acme}/interactions`, a.token)
  assert.equal(listed.data.filter((i) => i.id === call).length, 1, 'the retried push created the call once')
  assert.equal(listed.data.length, 2)
  assert.equal(await b.count('interactions'), 2)

  // 6. The server cannot vouch for a phone's cursor (the database was
  // restored from a backup: the phone is ahead of it). The pull answers 410;
  // the phone's offline edit still reaches the server, and after the reset
  // the phone holds exactly what the server has.
  await a.update('customers', acme, { industry: 'wholesale' })
  await a.db.adapter.setLocal('__watermelon_last_pulled_at', String(Number.MAX_SAFE_INTEGER - 1))
  await a.sync()
  const server = await api('GET', `/v1/customers/${acme}`, a.token)
  assert.equal(server.industry, 'wholesale', 'the edit made before the resync reached the server')
  assert.equal((await a.get('customers', acme)).industry, 'wholesale')
  assert.equal(await a.count('interactions'), 2, 'phone-a holds every visit after the resync')
  assert.equal(await a.count('customers'), 1, 'phone-a holds exactly the live customers after the resync')
  await a.sync() // and syncs on normally from the new cursor

  console.log('watermelondb e2e: ok')
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
