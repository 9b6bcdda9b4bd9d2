// The reference app's data layer under Node, against a running `fieldcrm
// serve` at FIELDCRM_URL (page size FIELDCRM_SYNC_PAGE_SIZE): a rep signs
// in on a phone whose database is LokiJS, syncs a first time with
// progress, lists and searches customers, opens a timeline, logs a visit
// with a check-in, plans a follow-up, syncs, and finds both on the server;
// a visit the server refuses shows in the rejected list until it is fixed
// (another until it is dropped),
// and a conflict with an edit at the desk is listed and reverted; signing
// out empties the phone.
// The Go test TestReferenceAppDataLayer in cmd/fieldcrm compiles this with
// tsconfig.test.json and runs it.
import assert from 'node:assert/strict'
import LokiJSAdapter from '@nozbe/watermelondb/adapters/lokijs'
import watermelonLogger from '@nozbe/watermelondb/utils/common/logger'
import { signIn } from '@fieldcrm/watermelondb'
import type { Tokens } from '@fieldcrm/watermelondb'

import {
  Session,
  customerTimeline,
  discardRejected,
  logVisit,
  openConflicts,
  openDatabase,
  planFollowUp,
  progressFraction,
  rejectedItems,
  resolveConflict,
  searchCustomers,
} from '../src/data'
import type { SyncState } from '../src/data'
import { Customer, Interaction, Q, Task } from '../src/generated/models'

// LokiJS' in-memory storage, for Node (lokijs has no type declarations).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { LokiMemoryAdapter } = require('lokijs') as { LokiMemoryAdapter: new () => object }

watermelonLogger.log = () => {} // LokiJS' set-up chatter

const base = process.env.FIELDCRM_URL ?? ''
const pageSize = Number(process.env.FIELDCRM_SYNC_PAGE_SIZE ?? 0)
const runID = Date.now().toString(36)
const password = 'correct horse battery'
const customerCount = 45

async function api<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: 'Bearer ' + token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return (text ? JSON.parse(text) : null) as T
}

interface Created {
  id: string
}

async function main(): Promise<void> {
  assert.ok(base, 'FIELDCRM_URL is required')
  assert.ok(pageSize > 0 && pageSize < customerCount, 'FIELDCRM_SYNC_PAGE_SIZE must make the first sync take several pages')

  // The company: an admin, a team, a rep; the rep's customers entered at the desk.
  const admin = (await api<Tokens>('POST', '/v1/auth/signup', null, { company_name: 'Reference ' + runID, name: 'Admin', email: `admin-${runID}@app.test`, password })).access_token
  const manager = await api<Created>('POST', '/v1/users', admin, { email: `mgr-${runID}@app.test`, name: 'Manager', password, role: 'manager' })
  const team = await api<Created>('POST', '/v1/teams', admin, { name: 'Field', manager_id: manager.id })
  const repEmail = `rep-${runID}@app.test`
  await api<Created>('POST', '/v1/users', admin, { email: repEmail, name: 'Rep', password, role: 'rep', team_id: team.id })
  const desk = (await signIn(base, { email: repEmail, password, deviceId: 'desk' })).access_token
  const customers: (Created & { number: string; name: string })[] = []
  for (let i = 0; i < customerCount; i++) {
    const name = i === 7 ? 'Wang Orchard Supplies' : `Customer ${String(i).padStart(2, '0')}`
    const phone = i === 7 ? '139 0013 9000' : `138 0000 ${String(1000 + i)}`
    customers.push(await api('POST', '/v1/customers', desk, { name, kind: 'company', phones: [{ label: 'mobile', number: phone }] }))
  }
  const orchard = customers[7]
  const earlier = await api<Created>('POST', '/v1/interactions', desk, {
    customer_id: orchard.id, channel: 'phone', content: 'asked for a price list', occurred_at: new Date(Date.now() - 3 * 86400e3).toISOString(),
  })
  const dueTask = await api<Created>('POST', '/v1/tasks', desk, {
    customer_id: orchard.id, title: 'send the price list', due_at: new Date(Date.now() - 2 * 86400e3).toISOString(),
  })

  // The phone: sign in, first sync with progress.
  const db = openDatabase((schema, migrations) => new LokiJSAdapter({
    schema,
    migrations,
    useWebWorker: false,
    useIncrementalIndexedDB: true,
    _testLokiAdapter: new LokiMemoryAdapter(),
    dbName: 'phone-' + runID,
    onSetUpError: (e: Error) => { throw e },
  } as ConstructorParameters<typeof LokiJSAdapter>[0]))
  const saved: Tokens[] = []
  let signedOut = false
  const session = await Session.signIn({
    baseUrl: base, database: db, deviceId: 'phone-' + runID,
    tokens: { save: async (t) => { saved.push(t) } },
    onSignedOut: () => { signedOut = true },
  }, repEmail, password)
  assert.equal(saved.length, 1, 'the tokens were kept')
  const states: SyncState[] = []
  session.subscribe((s) => states.push(s))
  const first = await session.sync()
  const during = states.filter((s) => s.status === 'syncing' && s.pages > 0)
  assert.ok(first.pages >= Math.ceil(customerCount / pageSize), `first sync in pages: ${first.pages}`)
  assert.ok(during.length >= 2, 'progress after each page')
  assert.ok(during.every((s) => s.firstSync), 'a first sync')
  for (let i = 1; i < during.length; i++) assert.ok(during[i].done >= during[i - 1].done, 'progress grows')
  assert.ok(during.some((s) => progressFraction(s) > 0 && progressFraction(s) < 1), 'a fraction between 0 and 1 mid-way')
  assert.equal(session.syncState.status, 'synced')
  assert.equal(progressFraction(session.syncState), 1)
  assert.ok(session.syncState.done >= customerCount + 2, `every record came: ${session.syncState.done}`)
  console.log(`first sync: ${first.pages} pages, ${first.pulled} records`)

  // The list and the search, in the local database.
  const all = await searchCustomers(db, '')
  assert.equal(all.length, customerCount)
  assert.deepEqual(all.map((c) => c.name), [...all.map((c) => c.name)].sort(), 'sorted by name')
  assert.deepEqual((await searchCustomers(db, 'orchard')).map((c) => c.id), [orchard.id], 'by name, any case')
  assert.ok(orchard.number, 'the server numbered the customer')
  assert.deepEqual((await searchCustomers(db, orchard.number)).map((c) => c.id), [orchard.id], 'by number')
  assert.deepEqual((await searchCustomers(db, '13900139000')).map((c) => c.id), [orchard.id], 'by phone digits')
  assert.deepEqual((await searchCustomers(db, 'no such customer')), [])
  assert.equal((await searchCustomers(db, 'Customer', 10)).length, 10, 'the limit')

  // The timeline: newest first.
  let timeline = await customerTimeline(db, orchard.id)
  assert.equal(timeline.customer.name, 'Wang Orchard Supplies')
  assert.deepEqual(timeline.entries.map((e) => e.id), [dueTask.id, earlier.id])

  // A visit with its check-in, and a follow-up with a reminder, offline first.
  const visit = await logVisit(db, { customerId: orchard.id, content: 'walked the orchard', outcome: 'order next week', checkIn: { lat: 31.2304, lng: 121.4737, accuracy: 12, address: 'Pudong' } })
  const dueAt = new Date(Date.now() + 7 * 86400e3)
  const followUp = await planFollowUp(db, { customerId: orchard.id, title: 'take the order', notes: 'bring the catalogue', dueAt, remindMinutesBefore: 60 })
  timeline = await customerTimeline(db, orchard.id)
  assert.deepEqual(timeline.entries.map((e) => e.id), [followUp.id, visit.id, dueTask.id, earlier.id])
  assert.deepEqual(timeline.entries.map((e) => e.unsynced), [true, true, false, false])

  await session.sync()
  timeline = await customerTimeline(db, orchard.id)
  assert.deepEqual(timeline.entries.map((e) => e.unsynced), [false, false, false, false], 'pushed')
  const onServer = await api<{ channel: string; content: string; check_in: { lat: number; lng: number; accuracy: number } }>('GET', `/v1/interactions/${visit.id}`, desk)
  assert.equal(onServer.channel, 'visit')
  assert.equal(onServer.content, 'walked the orchard')
  assert.deepEqual([onServer.check_in.lat, onServer.check_in.lng, onServer.check_in.accuracy], [31.2304, 121.4737, 12])
  const taskOnServer = await api<{ title: string; due_at: string; remind_minutes_before: number; status: string }>('GET', `/v1/tasks/${followUp.id}`, desk)
  assert.equal(taskOnServer.title, 'take the order')
  assert.equal(taskOnServer.remind_minutes_before, 60)
  assert.equal(taskOnServer.status, 'open')
  assert.equal(Math.round(Date.parse(taskOnServer.due_at) / 1000), Math.round(dueAt.getTime() / 1000))

  // A visit with a next step: the server makes the follow-up, linked to the
  // visit, and the next sync brings it to the phone.
  const quoteDue = new Date(Date.now() + 2 * 86400e3)
  const quoted = await logVisit(db, { customerId: orchard.id, content: 'priced the pumps', checkIn: { lat: 31.23, lng: 121.47, accuracy: 8 }, nextStep: { title: 'send the quote', dueAt: quoteDue } })
  await session.sync()
  await session.sync()
  const linked = await db.get<Task>('tasks').query(Q.where('interaction_id', quoted.id)).fetch()
  assert.equal(linked.length, 1, 'the next step arrived as a task linked to its visit')
  assert.equal(linked[0].title, 'send the quote')
  assert.equal(Math.round((linked[0].dueAt?.getTime() ?? 0) / 1000), Math.round(quoteDue.getTime() / 1000))
  assert.equal((await db.get<Interaction>('interactions').find(quoted.id)).nextStep?.task_id, linked[0].id)

  // A visit the server refuses (a latitude out of range) is listed as rejected, stays on the phone, and goes once fixed.
  const bad = await logVisit(db, { customerId: orchard.id, content: 'GPS glitch', checkIn: { lat: 200, lng: 121.47, accuracy: 5 } })
  const report = await session.sync()
  assert.deepEqual(report.rejected.map((r) => r.id), [bad.id])
  const rejected = await rejectedItems(session)
  assert.equal(rejected.length, 1)
  assert.equal(rejected[0].id, bad.id)
  assert.equal(rejected[0].table, 'interactions')
  assert.equal(rejected[0].label, 'GPS glitch')
  assert.match(rejected[0].reason, /lat/, 'the reason names the field')
  await db.write(() => bad.update((i: Interaction) => { i.checkIn = { lat: 20, lng: 121.47, accuracy: 5, address: '' } }))
  await session.sync()
  assert.deepEqual(await rejectedItems(session), [])
  assert.equal((await api<{ check_in: { lat: number } }>('GET', `/v1/interactions/${bad.id}`, desk)).check_in.lat, 20)

  // A refused visit can also be dropped from the phone.
  const glitch = await logVisit(db, { customerId: orchard.id, content: 'another glitch', checkIn: { lat: -91, lng: 0, accuracy: 5 } })
  await session.sync()
  const [refused] = await rejectedItems(session)
  assert.equal(refused?.id, glitch.id)
  await discardRejected(db, refused)
  await session.sync()
  assert.deepEqual(await rejectedItems(session), [], 'forgotten once dropped')
  assert.ok(!(await customerTimeline(db, orchard.id)).entries.some((e) => e.id === glitch.id), 'gone from the timeline')
  await assert.rejects(api('GET', `/v1/interactions/${glitch.id}`, desk), /404/)

  // A conflict: the admin changes the industry at the desk while the rep, not
  // yet synced, changes it on the phone. The phone's value wins and the
  // conflict reaches the conflicts list; reverting brings the admin's back.
  assert.deepEqual(await openConflicts(db), [], 'no conflicts yet')
  await api('PATCH', `/v1/customers/${orchard.id}`, admin, { industry: 'fruit wholesale' })
  const local = await db.get<Customer>('customers').find(orchard.id)
  await db.write(() => local.update((c: Customer) => { c.industry = 'orchards' }))
  await session.sync()
  assert.equal((await api<{ industry: string }>('GET', `/v1/customers/${orchard.id}`, desk)).industry, 'orchards', 'the device wins')
  const conflicts = await openConflicts(db)
  assert.equal(conflicts.length, 1, 'the conflict was synced to the phone')
  assert.equal(conflicts[0].recordId, orchard.id)
  assert.equal(conflicts[0].column, 'industry')
  assert.equal(conflicts[0].kept, 'device')
  await resolveConflict(session, conflicts[0].id, 'revert')
  assert.deepEqual(await openConflicts(db), [], 'resolved')
  assert.equal((await db.get<Customer>('customers').find(orchard.id)).industry, 'fruit wholesale', 'the reverted value came back by pull')
  assert.equal(signedOut, false)
  await session.signOut()
  assert.deepEqual(await searchCustomers(db, ''), [], 'signing out empties the phone')
  await assert.rejects(api('GET', '/v1/sync/pull?last_pulled_at=null', saved[saved.length - 1].access_token), /401/, 'the session is over')
  console.log('reference app data layer: ok')
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
