// Tests of @fieldcrm/watermelondb: the real WatermelonDB (LokiJS adapter, in
// Node) syncing through the package against a running `fieldcrm serve` at
// FIELDCRM_URL. Run by the Go test TestSyncClientPackage in cmd/fieldcrm,
// which starts the server with a page size of FIELDCRM_SYNC_PAGE_SIZE and the
// JWT secret FIELDCRM_JWT_SECRET (this script signs an expired access token
// with it, as a token that ran out mid-sync). FIELDCRM_CLIENT_TERRITORY is the
// size of the large territory (customers of one rep): the Go test seeds it
// through the store and names its rep in FIELDCRM_CLIENT_BIG_REP (and
// _PASSWORD); without them, this script seeds it by pushes (slow).
'use strict'

const assert = require('node:assert/strict')
const childProcess = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { LokiMemoryAdapter } = require('lokijs')
const { createSync, signIn, refreshTokens, tokenCredentials, FieldcrmProblemError } = require('@fieldcrm/watermelondb')
const { startSync } = require('../dist-examples/examples/glue.js')
const wmLogger = require('@nozbe/watermelondb/utils/common/logger').default

wmLogger.log = () => {} // LokiJS' set-up chatter

const base = process.env.FIELDCRM_URL
const pageSize = Number(process.env.FIELDCRM_SYNC_PAGE_SIZE || 5000)
const territory = Number(process.env.FIELDCRM_CLIENT_TERRITORY || 5000)
const jwtSecret = process.env.FIELDCRM_JWT_SECRET
const runID = Date.now().toString(36)
const password = 'correct horse battery'
const passwords = {} // of users not made here

async function api(method, p, token, body) {
  const res = await fetch(base + p, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: 'Bearer ' + token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw Object.assign(new Error(`${method} ${p}: ${res.status} ${text}`), { status: res.status })
  return text ? JSON.parse(text) : null
}

let schema
function database(name) {
  const adapter = new LokiJSAdapter({
    schema: appSchema({ version: schema.version, tables: schema.tables.map((t) => tableSchema({ name: t.name, columns: t.columns })) }),
    useWebWorker: false,
    useIncrementalIndexedDB: true,
    _testLokiAdapter: new LokiMemoryAdapter(),
    dbName: name + runID,
    onSetUpError: (e) => { throw e },
  })
  return new Database({ adapter, modelClasses: schema.tables.map((t) => class extends Model { static table = t.name }) })
}

// countingFetch is fetch that counts requests by "METHOD /path" and the
// records the pulls carried; cut(n) makes it fail after the n-th pull's
// answer arrived (the app killed while applying that page).
function countingFetch() {
  const f = async (url, init) => {
    const key = `${init?.method ?? 'GET'} ${new URL(url).pathname}`
    f.calls[key] = (f.calls[key] ?? 0) + 1
    if (key === 'GET /v1/sync/pull') f.lastPulledAt.push(new URL(url).searchParams.get('last_pulled_at'))
    const res = await fetch(url, init)
    if (key === 'GET /v1/sync/pull' && res.ok) {
      f.records += Number(res.headers.get('X-Sync-Records'))
      if (f.cutAfter && f.calls[key] >= f.cutAfter) throw new Error('the app was killed')
    }
    return res
  }
  f.calls = {}
  f.records = 0
  f.lastPulledAt = []
  return f
}

// phone is a device of a user: its database, its credentials (counting
// refreshes and sign-outs) and the client.
async function phone(name, email, extra = {}) {
  const tokens = await signIn(base, { email, password: passwords[email] ?? password, deviceId: name })
  const p = { name, tokens, refreshes: 0, signedOut: [], rejected: [], progress: [], db: extra.db ?? database(name), fetch: extra.fetch ?? countingFetch() }
  p.credentials = {
    getAccessToken: () => p.tokens.access_token,
    refresh: async () => {
      p.refreshes++
      p.tokens = await refreshTokens(base, p.tokens.refresh_token)
      return p.tokens.access_token
    },
    onSignedOut: (problem) => { p.signedOut.push(problem) },
  }
  p.client = createSync({
    baseUrl: base, database: p.db, credentials: p.credentials, deviceId: name, fetch: p.fetch,
    onRejected: (table, id, reason) => p.rejected.push({ table, id, reason }),
    onProgress: (x) => { p.progress.push(x); extra.onProgress?.(x, p) },
  })
  p.create = async (table, fields) => {
    let rec
    await p.db.write(async () => { rec = await p.db.get(table).create((r) => { for (const [k, v] of Object.entries(fields)) r._raw[k] = v }) })
    return rec.id
  }
  p.update = async (table, id, fields) => {
    await p.db.write(async () => {
      const rec = await p.db.get(table).find(id)
      await rec.update((r) => { for (const [k, v] of Object.entries(fields)) r._setRaw(k, v) })
    })
  }
  p.get = async (table, id) => { try { return (await p.db.get(table).find(id))._raw } catch { return null } }
  p.count = (table) => p.db.get(table).query().fetchCount()
  return p
}

// expiredTokenLike signs, with the server's secret, the claims of a real
// access token with a lifetime that ended two minutes ago (past the
// server's 30 s leeway): the token a phone holds when it expires mid-sync.
function expiredTokenLike(token) {
  const [, payload] = token.split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const now = Math.floor(Date.now() / 1000)
  Object.assign(claims, { iat: now - 1000, nbf: now - 1000, exp: now - 120 })
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const head = enc({ alg: 'HS256', typ: 'JWT' }) + '.' + enc(claims)
  return head + '.' + crypto.createHmac('sha256', jwtSecret).update(head).digest('base64url')
}

const scenarios = []
const scenario = (name, fn) => scenarios.push({ name, fn })

let admin, bigRep, smallRep, desk, ownerOfSmall

// seed creates n customers owned by the rep of token, pushed as created
// rows by a device of theirs (5,000 a push, the server's limit).
async function seed(token, n, prefix) {
  const { timestamp } = await api('GET', '/v1/sync/pull?last_pulled_at=null&schema_version=' + schema.version, token)
  let cursor = timestamp
  for (let i = 0; i < n; i += 5000) {
    const created = []
    for (let j = i; j < Math.min(n, i + 5000); j++) {
      created.push({ id: `${prefix}${runID}${j}`, name: `${prefix} customer ${j}`, kind: 'company', stage: 'lead', customer_type: 'normal', _status: 'created', _changed: '' })
    }
    const res = await api('POST', `/v1/sync/push?last_pulled_at=${cursor}`, token, { changes: { customers: { created, updated: [], deleted: [] } } })
    assert.equal(res.experimentalRejectedIds?.customers?.length ?? 0, 0, 'seeding rejected rows')
  }
}

scenario('a first sync of a large territory pages, reporting progress', async () => {
  const p = await phone('big-1', bigRep.email)
  const report = await p.client.sync()
  assert.equal(await p.count('customers'), territory)
  assert.equal(report.turbo, false, 'LokiJS has no Turbo Login: the ordinary pull is used')
  const pages = Math.ceil(territory / pageSize)
  assert.ok(report.pages >= pages, `${report.pages} pages for ${territory} records at ${pageSize} a page`)
  assert.equal(p.progress.length, report.pages, 'progress after each page')
  for (let i = 1; i < p.progress.length; i++) assert.ok(p.progress[i].done >= p.progress[i - 1].done, 'done only grows')
  const last = p.progress.at(-1)
  assert.equal(last.done, report.pulled)
  assert.equal(last.expected, last.done, 'the last page makes expected exact')
  assert.ok(report.pulled >= territory && report.pulled <= territory + 5, `pulled ${report.pulled}`)
  if (pages > 1) {
    const first = p.progress[0]
    assert.ok(first.firstSync && first.expected > 0.8 * territory && first.expected < 1.25 * territory,
      `the first page expected ${first.expected} of ${territory}`)
  }
})

// LokiJS has no Turbo Login; here its adapter stands in for SQLite on JSI:
// provideSyncJson keeps the text it is given and unsafeLoadFromSync does
// what WatermelonDB's native side does with it (Database-turboSync.cpp:
// refuse a deleted id, insert created and updated rows as synced, hand back
// every other top-level value). The client must ask for the whole first sync
// in one response (turbo=true) and hand it over exactly as the server sent it.
scenario('Turbo Login takes the whole first sync in one response, as the server sent it', async () => {
  const { sanitizedRaw } = require('@nozbe/watermelondb/RawRecord')
  const db = database('turbo')
  const loki = db.adapter.underlyingAdapter
  const given = []
  loki._dispatcherType = 'jsi'
  loki.provideSyncJson = (id, json, callback) => { given.push(json); callback({ value: undefined }) }
  loki.unsafeLoadFromSync = (id, callback) => {
    const { changes, ...rest } = JSON.parse(given.at(-1))
    const ops = []
    for (const [table, tc] of Object.entries(changes)) {
      if (tc.deleted.length) return callback({ error: new Error('expected deleted field to be empty') })
      const ts = db.schema.tables[table]
      if (!ts) continue
      for (const rec of [...tc.created, ...tc.updated]) ops.push(['create', table, { ...sanitizedRaw(rec, ts), _status: 'synced', _changed: '' }])
    }
    loki.batch(ops, (r) => {
      // The native side inserts rows JavaScript never saw: none is cached
      // as a model (LokiJS' batch marks its creations as cached).
      const driver = loki._dispatcher._worker._bridge.driver
      for (const [, table, raw] of ops) driver.removeFromCache(table, raw.id)
      callback(r.error ? r : { value: rest })
    })
  }
  const sent = []
  const f = async (url, init) => {
    const res = await fetch(url, init)
    const u = new URL(url)
    if (u.pathname === '/v1/sync/pull') sent.push({ query: u.searchParams, body: await res.clone().text() })
    return res
  }
  const p = await phone('big-turbo', bigRep.email, { db, fetch: f })
  const report = await p.client.sync()
  assert.equal(report.turbo, true)
  assert.equal(sent.length, 1, 'the whole first sync comes in one response')
  assert.equal(sent[0].query.get('turbo'), 'true')
  assert.equal(given.length, 1)
  assert.equal(given[0], sent[0].body, 'the response is handed over byte for byte')
  assert.equal(report.pages, 1)
  assert.equal(await p.count('customers'), territory)
  assert.ok(report.pulled >= territory && report.pulled <= territory + 5, `pulled ${report.pulled}`)
  assert.deepEqual(p.progress.at(-1), { done: report.pulled, expected: report.pulled, pages: 1, firstSync: true })
  // It syncs on from the cursor with ordinary pulls, and pushes edits.
  const [someone] = await db.get('customers').query().fetch()
  await p.update('customers', someone.id, { title: 'Edited after a Turbo Login' })
  const next = await p.client.sync()
  assert.equal(next.turbo, false)
  assert.equal(sent.at(-1).query.get('turbo'), null)
  assert.equal((await p.get('customers', someone.id))._status, 'synced', 'the edit was pushed')
})

scenario('a first sync killed half-way resumes and re-sends at most one page', async () => {
  if (territory <= 2 * pageSize) throw new Error(`the territory (${territory}) must span more than two pages of ${pageSize}`)
  const f = countingFetch()
  f.cutAfter = 2
  const p = await phone('big-2', bigRep.email, { fetch: f })
  await assert.rejects(p.client.sync(), /the app was killed/)
  const kept = await p.count('customers')
  assert.equal(kept, pageSize, 'the first page was applied, the second lost with the app')
  const g = countingFetch()
  const again = await phone('big-2', bigRep.email, { db: p.db, fetch: g })
  await again.client.sync()
  assert.notEqual(g.lastPulledAt[0], 'null', 'the resumed sync continues from the last applied page')
  assert.equal(await again.count('customers'), territory)
  assert.ok(f.records + g.records <= territory + pageSize + 5,
    `received ${f.records} + ${g.records} records for ${territory}: more than one page again`)
})

scenario('an access token expiring mid-sync is refreshed once, also for concurrent calls', async () => {
  // The token runs out between the pull and the push of the sync.
  let p
  const f = countingFetch()
  const expiring = async (url, init) => {
    const res = await f(url, init)
    if (new URL(url).pathname === '/v1/sync/pull' && f.calls['GET /v1/sync/pull'] === 1) {
      p.tokens = { ...p.tokens, access_token: expiredTokenLike(p.tokens.access_token) }
    }
    return res
  }
  p = await phone('small-token', smallRep.email, { fetch: expiring })
  await p.create('customers', { name: 'Made offline', kind: 'company', stage: 'lead', customer_type: 'normal' })
  await p.client.sync()
  assert.equal(p.refreshes, 1, 'one refresh')
  assert.equal(f.calls['POST /v1/sync/push'], 2, 'the push answered token-expired, and was sent again')
  assert.deepEqual(p.signedOut, [])
  // Four calls at once with an expired token share one refresh (two
  // refreshes with one refresh token would revoke the session).
  p.tokens = { ...p.tokens, access_token: expiredTokenLike(p.tokens.access_token) }
  const before = p.refreshes
  const [, conflicts, , me] = await Promise.all([
    p.client.sync(), p.client.conflictsOf('customers', 'nothing'), p.client.registerPushToken('tok-' + runID, 'android'), p.client.api.json('GET', '/v1/me'),
  ])
  assert.equal(p.refreshes - before, 1, 'concurrent calls shared one refresh')
  assert.deepEqual(conflicts, [])
  assert.equal(me.user.email, smallRep.email)
  assert.deepEqual(p.signedOut, [])
})

scenario('a revoked session calls onSignedOut', async () => {
  const p = await phone('small-revoked', smallRep.email)
  await p.client.sync()
  await api('POST', '/v1/auth/logout', p.tokens.access_token) // signed out elsewhere
  await assert.rejects(p.client.sync(), (e) => e instanceof FieldcrmProblemError && e.isSessionRevoked)
  assert.equal(p.signedOut.length, 1)
  assert.equal(p.refreshes, 0)
  // An expired token of a revoked session: the refresh is refused, and that is a sign-out too.
  const q = await phone('small-revoked-2', smallRep.email)
  await api('POST', '/v1/auth/logout', q.tokens.access_token)
  q.tokens = { ...q.tokens, access_token: expiredTokenLike(q.tokens.access_token) }
  await assert.rejects(q.client.sync(), (e) => e instanceof FieldcrmProblemError && e.isSessionRevoked)
  assert.equal(q.refreshes, 1)
  assert.equal(q.signedOut.length, 1)
})

scenario('a rejected record is reported once and not pushed again until edited', async () => {
  const p = await phone('small-rejected', smallRep.email)
  await p.client.sync()
  const bad = await p.create('interactions', { customer_id: ownerOfSmall, channel: 'carrier-pigeon', content: 'coo', occurred_at: Date.now() })
  const report = await p.client.sync()
  assert.equal(p.rejected.length, 1, 'reported')
  assert.equal(p.rejected[0].id, bad)
  assert.equal(report.rejected.length, 1)
  assert.ok(p.rejected[0].reason.length > 0)
  const pushes = p.fetch.calls['POST /v1/sync/push'] ?? 0
  await p.client.sync()
  await p.client.sync()
  assert.equal(p.fetch.calls['POST /v1/sync/push'] ?? 0, pushes, 'the rejected record was not pushed again')
  assert.equal(p.rejected.length, 1, 'not reported again')
  assert.equal((await p.get('interactions', bad))._status, 'created', 'kept on the device, unsynced')
  assert.deepEqual((await p.client.rejectedRecords()).map((r) => r.id), [bad])
  await p.update('interactions', bad, { channel: 'visit' }) // the app lets the user fix it
  await p.client.sync()
  assert.equal((await p.get('interactions', bad))._status, 'synced')
  assert.deepEqual(await p.client.rejectedRecords(), [])
  assert.equal((await api('GET', `/v1/interactions/${bad}`, desk)).channel, 'visit')

  // Another refused record the user drops instead: the list forgets it at
  // once, before any sync.
  const dropped = await p.create('interactions', { customer_id: ownerOfSmall, channel: 'telepathy', content: 'hm', occurred_at: Date.now() })
  await p.client.sync()
  assert.deepEqual((await p.client.rejectedRecords()).map((r) => r.id), [dropped])
  const record = await p.db.get('interactions').find(dropped)
  await p.db.write(() => record.destroyPermanently())
  assert.deepEqual(await p.client.rejectedRecords(), [], 'a record dropped on the device is no longer listed')
})

scenario('a push that meets a conflict converges in one sync()', async () => {
  const a = await phone('small-a', smallRep.email)
  const b = await phone('small-b', smallRep.email)
  await a.client.sync()
  await b.client.sync()
  await a.update('customers', ownerOfSmall, { tags: JSON.stringify(['vip']) })
  await a.client.sync()
  await b.update('customers', ownerOfSmall, { tags: JSON.stringify(['north']) }) // b has not pulled a's edit
  const report = await b.client.sync()
  const server = await api('GET', `/v1/customers/${ownerOfSmall}`, desk)
  assert.deepEqual([...server.tags].sort(), ['north', 'vip'], 'the server merged the tags')
  const local = await b.get('customers', ownerOfSmall)
  assert.deepEqual(JSON.parse(local.tags).sort(), ['north', 'vip'], 'phone b shows what the server kept, after one sync()')
  assert.equal(local._status, 'synced')
  assert.ok(report.rounds >= 2, `rounds ${report.rounds}`)
  const conflicts = await b.client.conflictsOf('customers', ownerOfSmall)
  assert.ok(conflicts.some((c) => c.column === 'tags'), 'the merge is a recorded conflict')
  const resolved = await b.client.resolveConflict(conflicts.find((c) => c.column === 'tags').id, 'keep')
  assert.equal(resolved.resolution, 'keep')
})

scenario('410: unpushed edits survive the reset', async () => {
  const p = await phone('small-410', smallRep.email)
  await p.client.sync()
  await p.update('customers', ownerOfSmall, { industry: 'wholesale' })
  const offline = await p.create('customers', { name: 'Created before the 410', kind: 'company', stage: 'lead', customer_type: 'normal' })
  // A cursor the server cannot vouch for (the database restored from a backup).
  await p.db.adapter.setLocal('__watermelon_last_pulled_at', String(Number.MAX_SAFE_INTEGER - 1))
  const report = await p.client.sync()
  assert.equal(report.reset, true)
  assert.equal((await api('GET', `/v1/customers/${ownerOfSmall}`, desk)).industry, 'wholesale', 'the edit reached the server')
  assert.equal((await p.get('customers', ownerOfSmall)).industry, 'wholesale', 'and is on the phone after the reset')
  assert.equal((await p.get('customers', offline))._status, 'synced', 'the offline create survived')
  const live = (await api('GET', '/v1/customers?limit=200', desk)).data.length
  assert.equal(await p.count('customers'), live)
})

scenario('a push token is registered under the device id and sign-out unregisters it', async () => {
  const p = await phone('small-push', smallRep.email)
  await p.client.registerPushToken('fcm-' + runID, 'android')
  let devices = (await api('GET', '/v1/devices', desk)).data
  assert.ok(devices.some((d) => d.device_id === 'small-push' && d.fcm_token === 'fcm-' + runID), JSON.stringify(devices))
  await p.client.signOut()
  devices = (await api('GET', '/v1/devices', desk)).data
  assert.ok(!devices.some((d) => d.device_id === 'small-push'), 'the device is gone with the session')
  await assert.rejects(p.client.sync(), (e) => e instanceof FieldcrmProblemError && e.isSessionRevoked)
})

scenario("the guide's glue syncs, and the guide shows it as it is", async () => {
  const events = { tokens: 0, progress: [] }
  const db = database('glue')
  const client = await startSync({
    saveTokens: async () => { events.tokens++ },
    showSignIn: () => { throw new Error('signed out') },
    setProgress: (f) => events.progress.push(f),
    showRejected: () => {},
  }, db, base, smallRep.email, password, 'glue')
  assert.equal(events.tokens, 1)
  assert.equal(events.progress.at(-1), 1)
  assert.ok(await db.get('customers').query().fetchCount() > 0)
  await client.sync()
  const guide = fs.readFileSync(path.join(__dirname, '../../../docs/sync-client.md'), 'utf8')
  const glue = fs.readFileSync(path.join(__dirname, '../examples/glue.ts'), 'utf8')
  assert.ok(guide.includes(glue.trim()), 'docs/sync-client.md shows examples/glue.ts as it is')
})

scenario('the CLI writes the generated models of a running server, as `fieldcrm schema` does', async () => {
  const cli = path.join(__dirname, '../bin/fieldcrm-watermelondb.js')
  const run = (args, env) => childProcess.spawnSync(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' })
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrm-models-'))
  try {
    const signedIn = { FIELDCRM_EMAIL: smallRep.email, FIELDCRM_PASSWORD: password }
    const all = run(['models', '--server', base, '--out', out], signedIn)
    assert.equal(all.status, 0, all.stderr)
    const one = run(['models', '--server', base, '--out', path.join(out, 'only2'), '--version', '2'], { FIELDCRM_TOKEN: desk })
    assert.equal(one.status, 0, one.stderr)
    // FIELDCRM_SCHEMA_DIR holds `fieldcrm schema --out` of the same build.
    const want = process.env.FIELDCRM_SCHEMA_DIR
    assert.ok(want, 'FIELDCRM_SCHEMA_DIR is set by the Go test')
    const versions = fs.readdirSync(want).sort()
    assert.deepEqual(fs.readdirSync(out).filter((d) => d !== 'only2').sort(), versions)
    for (const v of versions) {
      for (const file of fs.readdirSync(path.join(want, v))) {
        assert.equal(fs.readFileSync(path.join(out, v, file), 'utf8'), fs.readFileSync(path.join(want, v, file), 'utf8'), `${v}/${file}`)
      }
    }
    for (const file of fs.readdirSync(path.join(want, 'v2'))) {
      assert.equal(fs.readFileSync(path.join(out, 'only2', file), 'utf8'), fs.readFileSync(path.join(want, 'v2', file), 'utf8'), `--version 2: ${file}`)
    }
    // It signed out the session it began: no device of it is left.
    assert.ok(!(await api('GET', '/v1/devices', desk)).data.some((d) => d.device_id === 'fieldcrm-watermelondb-cli'))

    // Mistakes: a clear message, a failing status, nothing written.
    const bad = [
      [['models', '--server', base, '--out', path.join(out, 'x')], { FIELDCRM_EMAIL: smallRep.email, FIELDCRM_PASSWORD: 'wrong password!' }, 1, /password|credentials|sign/i],
      [['models', '--server', base, '--out', path.join(out, 'x'), '--version', '99'], { FIELDCRM_TOKEN: desk }, 1, /version/],
      [['models', '--server', base, '--out', path.join(out, 'x')], {}, 2, /FIELDCRM_TOKEN/],
      [['models', '--out', path.join(out, 'x')], { FIELDCRM_TOKEN: desk }, 2, /--server/],
      [['schema', '--server', base], { FIELDCRM_TOKEN: desk }, 2, /unknown command/],
    ]
    for (const [args, env, status, message] of bad) {
      const r = run(args, env)
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message, args.join(' '))
    }
    assert.ok(!fs.existsSync(path.join(out, 'x')), 'a refused run wrote nothing')

    // A server (or something posing as one) naming a file outside --out.
    const evil = http.createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({ schema_version: 1, files: { '../escaped.ts': 'x', 'schema.ts': 'y' } }))
    })
    await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve))
    try {
      const evilBase = `http://127.0.0.1:${evil.address().port}`
      const r = await new Promise((resolve) => {
        const child = childProcess.spawn(process.execPath, [cli, 'models', '--server', evilBase, '--out', path.join(out, 'evil'), '--version', '1'],
          { env: { PATH: process.env.PATH, FIELDCRM_TOKEN: 'any' } })
        let stderr = ''
        child.stderr.on('data', (d) => { stderr += d })
        child.on('close', (status) => resolve({ status, stderr }))
      })
      assert.equal(r.status, 1, r.stderr)
      assert.match(r.stderr, /escaped/)
      assert.ok(!fs.existsSync(path.join(out, 'escaped.ts')) && !fs.existsSync(path.join(out, 'evil')), 'nothing written')
    } finally {
      evil.close()
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true })
  }
})

async function main() {
  // The public types name no `any`.
  for (const f of fs.readdirSync(path.join(__dirname, '../dist')).filter((n) => n.endsWith('.d.ts'))) {
    const text = fs.readFileSync(path.join(__dirname, '../dist', f), 'utf8')
    assert.doesNotMatch(text, /\bany\b/, `dist/${f} names any`)
  }
  const signup = await api('POST', '/v1/auth/signup', null, { company_name: 'Client ' + runID, name: 'Admin', email: `admin-${runID}@client.test`, password })
  admin = signup.access_token
  const mgr = await api('POST', '/v1/users', admin, { email: `mgr-${runID}@client.test`, name: 'Manager', password, role: 'manager' })
  const team = await api('POST', '/v1/teams', admin, { name: 'Field', manager_id: mgr.id })
  smallRep = await api('POST', '/v1/users', admin, { email: `small-${runID}@client.test`, name: 'Small', password, role: 'rep', team_id: team.id })
  schema = await api('GET', '/v1/sync/schema', admin)
  desk = (await signIn(base, { email: smallRep.email, password, deviceId: 'desk' })).access_token
  if (process.env.FIELDCRM_CLIENT_BIG_REP) {
    bigRep = { email: process.env.FIELDCRM_CLIENT_BIG_REP }
    passwords[bigRep.email] = process.env.FIELDCRM_CLIENT_BIG_REP_PASSWORD
  } else {
    bigRep = await api('POST', '/v1/users', admin, { email: `big-${runID}@client.test`, name: 'Big', password, role: 'rep', team_id: team.id })
    const bigToken = (await signIn(base, { email: bigRep.email, password, deviceId: 'seed' })).access_token
    const t0 = Date.now()
    await seed(bigToken, territory, 'big')
    console.log(`seeded ${territory} customers by pushes in ${Date.now() - t0} ms`)
  }
  ownerOfSmall = (await api('POST', '/v1/customers', desk, { name: 'Small Co', kind: 'company' })).id
  const only = process.env.FIELDCRM_CLIENT_ONLY
  for (const s of scenarios) {
    if (only && !s.name.includes(only)) continue
    const t = Date.now()
    await s.fn()
    console.log(`ok: ${s.name} (${Date.now() - t} ms)`)
  }
  console.log(`@fieldcrm/watermelondb: ok (${territory} records, ${pageSize} a page)`)
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
